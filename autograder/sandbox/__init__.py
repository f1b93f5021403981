"""The kernel sandbox engine: :mod:`.bwrap` (bubblewrap, cgroups, rlimits), :mod:`.kernels` (sandboxed
Jupyter kernels started ahead of need) and :mod:`.zygote` / :mod:`.zygote_server` (kernels forked from a
preloaded Python, as root)."""
