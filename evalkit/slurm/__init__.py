"""SLURM sweeps (``hydra/launcher=slurm``): the resources checked before submitting
(``resources``) and the jobs waited for through the scheduler's queue (``queue``). Hydra's
launcher class, which uses both, is ``hydra_plugins/evalkit_slurm/launcher.py``."""
