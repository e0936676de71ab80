"""The printed report of ``sgmcmc.py``: its results as tables, each figure beside its target."""
from __future__ import annotations

# Targets from the benchmark issue.
TARGET_HAND_RATIO = 1.1  # bayesjax time / hand-written time <= 1.1
TARGET_VMAP_GAIN = 1.3  # 64 vmapped chains >= 1.3x the chain-steps/s of a Python loop
TARGET_POSTERIORS_GAIN = 10  # bj.run's most chains >= 10x the chain-steps/s of posteriors' one chain


def verdict(ok: bool) -> str:
    """PASS or FAIL."""
    return "PASS" if ok else "FAIL"


def print_report(args, chains: list[int], results: dict) -> None:
    """Prints every section that ran: the machine, then one table per section.

    Args:
      args: the parsed command line of ``sgmcmc.py``.
      chains: the chain counts of the throughput section.
      results: the figures the sections collected.
    """
    info = results["machine"]
    print()
    print("=" * 96)
    print("SGLD benchmark: MLP 64-50-50-10 on digits, batch 128, step size 1e-4, Gaussian prior, categorical")
    print("=" * 96)
    for k in ("platform", "python", "cpu", "cpu_count", "jax", "jaxlib", "device", "bayesjax", "git",
              "load_start", "load_end"):
        print(f"  {k:11s} {info.get(k)}")
    print(f"  {'settings':11s} steps={args.steps} repeats={args.repeats} (steady = min of repeats after "
          f"the first call)")

    tp = results.get("throughput", {})
    if tp:
        print()
        print("Steady-state throughput (chain-steps/s; time = best of repeats, compile = first call - best)")
        head = f"  {'chains':>6} | {'bj.run':>9} {'time s':>7} {'compile':>7} | {'hand':>9} {'time s':>7} " \
               f"{'compile':>7} | {'bj/hand':>7} {'target':>7} {'cpu b/h':>7}"
        if args.buffer_variant:
            head += f" | {'bj ns=1':>9} {'bj1/hand':>8} | {'bj lean':>9} {'lean/hand':>9} | {'hand rec':>9} {'bj/rec':>6}"
        print(head)
        for c in chains:
            row = tp[str(c)]
            b, h = row["bayesjax"], row["hand"]
            ratio = row["ratio_bayesjax_over_hand"]
            line = (f"  {c:>6} | {b['chain_steps_per_s']:>9.0f} {b['min_s']:>7.3f} {b['compile_s']:>7.2f} | "
                    f"{h['chain_steps_per_s']:>9.0f} {h['min_s']:>7.3f} {h['compile_s']:>7.2f} | "
                    f"{ratio:>7.2f} {verdict(ratio <= TARGET_HAND_RATIO):>7} {row['cpu_ratio_bayesjax_over_hand']:>7.2f}")
            if args.buffer_variant:
                b1 = row["bayesjax_num_samples_1"]
                lean = row["bayesjax_lean"]
                rec = row["hand_recording"]
                line += (f" | {b1['chain_steps_per_s']:>9.0f} {b1['min_s'] / h['min_s']:>8.2f}"
                         f" | {lean['chain_steps_per_s']:>9.0f} {lean['min_s'] / h['min_s']:>9.2f}"
                         f" | {rec['chain_steps_per_s']:>9.0f} {b['min_s'] / rec['min_s']:>6.2f}")
            print(line)
        print(f"  target: bayesjax time / hand-written time <= {TARGET_HAND_RATIO} (wall time); 'cpu b/h': the same "
              "ratio of process CPU time,\n  less sensitive to other processes on a shared machine")
        num_params = results["model"]["num_params"]
        sizes = ", ".join(f"{c} chains {c * args.steps * num_params * 4 / 2**20:,.0f} MiB" for c in chains)
        print(f"  bj.run keeps every position by default (num_samples=None): a buffer of chains x {args.steps} "
              f"steps x {num_params:,} params x 4 B\n  ({sizes}; above 1 GiB it keeps the last positions that fit "
              "and warns); the hand-written loop keeps the final position")
        if args.buffer_variant:
            print("  'bj ns=1': bj.run(num_samples=1), a one-slot buffer: the driver without the buffer's memory;\n"
                  "  'bj lean': bj.run(num_samples=1, info_every=0): no per-step log density kept either, the "
                  "outputs of the hand-written loop;\n  'hand rec': the hand-written loop keeping every position and "
                  "the log density (bj.run's default outputs; no 1 GiB cap), 'bj/rec' the default bj.run against it")

    loop = results.get("loop")
    if loop and "bayesjax" in loop:
        n = loop["num_chains"]
        gain = loop["bayesjax"]["gain"]
        print()
        print(f"{n} vmapped chains vs a Python loop of {n} jitted single-chain runs")
        print(f"  bj.run   loop {loop['bayesjax']['loop']['min_s']:7.2f}s   vmapped {loop['bayesjax']['vmapped_min_s']:7.2f}s"
              f"   gain {gain:5.2f}x   target >= {TARGET_VMAP_GAIN}x: {verdict(gain >= TARGET_VMAP_GAIN)}")
        if "hand" in loop:
            print(f"  hand     loop {loop['hand']['loop']['min_s']:7.2f}s   vmapped {loop['hand']['vmapped_min_s']:7.2f}s"
                  f"   gain {loop['hand']['gain']:5.2f}x")
        elif "hand_estimate_from_1_chain" in loop:
            print(f"  hand     gain {loop['hand_estimate_from_1_chain']:5.2f}x (estimate: {n} x its 1-chain "
                  "time / its vmapped time; --hand-loop measures it)")

    fp = results.get("fresh_process")
    if fp:
        print()
        print(f"Fresh processes, persistent compilation cache in a temporary folder "
              f"({fp['chains']} chain(s) x {fp['steps']} steps)")
        print(f"  {'':18s} {'import':>7} {'setup':>7} {'compile':>8} {'run':>7} {'process':>8}")
        for impl in ("bayesjax", "hand"):
            for phase in ("cold", "warm"):
                d = fp.get(f"{impl}_{phase}", {})
                if "error" in d or not d:
                    print(f"  {impl + ' ' + phase:18s} failed")
                    continue
                print(f"  {impl + ' ' + phase:18s} {d['import_s']:>7.2f} {d['setup_s']:>7.2f} {d['compile_s']:>8.2f} "
                      f"{d['second_call_s']:>7.2f} {d['short_run_process_s']:>8.2f}")
        print("  cold = empty cache (this process populates it), warm = the next process; compile = first call "
              "- second call;\n  process = interpreter start to exit of a short run (wall time of the child "
              "minus its second call)")
        run_entries = [e for e in fp.get("bayesjax_cache_entries", []) if e.startswith("jit_advance_chains-")]
        print(f"  bj.run's step loop (advance_chains) in the cache after the cold process: "
              f"{'yes' if run_entries else 'NO'} "
              f"({len(fp.get('bayesjax_cache_entries', []))} entries in all)")

    post = results.get("posteriors", {})
    posteriors_one_chain = post.get("chains", {}).get("1", {}).get("chain_steps_per_s")
    print()
    if "skipped" in post or "error" in post:
        print(f"posteriors: skipped ({post.get('skipped') or 'child failed: ' + post.get('error', '')[-300:]}).")
        print("  To include it: python3 -m venv /tmp/benchvenv && /tmp/benchvenv/bin/pip install "
              "torch==2.13.0 posteriors\n  then add --torch-python /tmp/benchvenv/bin/python "
              "(or set BENCH_TORCH_PYTHON)")
    elif post:
        print(f"posteriors {post['posteriors']} (torch {post['torch']}, default {post['torch_threads']} threads; "
              f"steps per timing: {post['steps']} for 1 chain, {post['vmap_steps']} vmapped; best of {args.repeats})")
        for c, row in post["chains"].items():
            if "error" in row:
                print(f"  chains={c:<3}: failed: {row['error']}")
                continue
            ours = tp.get(c, {}).get("bayesjax")
            ratio = (f"bj.run / posteriors = {ours['chain_steps_per_s'] / row['chain_steps_per_s']:.2f}x" if ours
                     else "")
            how = "torch.func.vmap over the update" if c != "1" else "one chain, Python loop"
            per_threads = ", ".join(f"{t} thread(s) {r['chain_steps_per_s']:.0f}" if "min_s" in r else f"{t}: failed"
                                    for t, r in row["threads"].items())
            print(f"  chains={c:<3} {row['chain_steps_per_s']:>9.0f} chain-steps/s ({how}; {per_threads})   {ratio}")
        single = post["chains"].get("1", {})
        most = max(tp, key=int) if tp else None
        if "chain_steps_per_s" in single and most:
            gain = tp[most]["bayesjax"]["chain_steps_per_s"] / single["chain_steps_per_s"]
            print(f"  bj.run with {most} vmapped chains / posteriors' one chain (as posteriors is usually run): "
                  f"{gain:.1f}x chain-steps/s (target {TARGET_POSTERIORS_GAIN}x: {verdict(gain >= TARGET_POSTERIORS_GAIN)})")
    print_host_split(results.get("host_split"), posteriors_one_chain)


def print_host_split(split: dict | None, posteriors_one_chain: float | None) -> None:
    """Prints section 5 (most chains, one device against the host split), beside posteriors' one chain if run."""
    if not split:
        return
    print()
    if "skipped" in split:
        print(f"Host split: skipped ({split['skipped']})")
        return
    runs = split["by_devices"]
    if "1" not in runs or len(runs) < 2:
        print(f"Host split: a child failed (device counts measured: {sorted(runs)})")
        return
    cores = max(runs, key=int)
    ((num_chains, one),) = runs["1"]["rows"].items()
    one_rate = one["bayesjax"]["chain_steps_per_s"]
    rate = runs[cores]["rows"][num_chains]["bayesjax"]["chain_steps_per_s"]
    print(f"Host split into one device per core, bj.run(num_samples=1), {num_chains} chains (benchmarks/scaling.py)")
    print(f"  one device {one_rate:,.0f} chain-steps/s; sharded over {cores} devices (as the bayesjax command "
          f"runs) {rate:,.0f}, {rate / one_rate:.2f}x")
    if posteriors_one_chain:
        gain = rate / posteriors_one_chain
        print(f"  sharded bj.run / posteriors' one chain: {gain:.1f}x chain-steps/s (target {TARGET_POSTERIORS_GAIN}x: {verdict(gain >= TARGET_POSTERIORS_GAIN)})")
