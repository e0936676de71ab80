"""Full-batch MCMC: HMC (:mod:`.hmc`), NUTS (:mod:`.nuts`) and Stan's window adaptation (:mod:`.adaptation`).

Builders: ``bj.hmc`` (:func:`.hmc.build_hmc`) and ``bj.nuts`` (:func:`.nuts.build_nuts`).
"""
