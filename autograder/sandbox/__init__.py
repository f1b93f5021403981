"""The kernel sandbox engine: :mod:`.bwrap` (bubblewrap, cgroups, rlimits), :mod:`.kernels` (sandboxed
kernels started ahead of need, and the grader's side of their protocol), :mod:`.executor` (the kernel
itself: an IPython shell serving cells over a socket, run inside the sandbox) and :mod:`.zygote` /
:mod:`.zygote_server` (kernels forked from a preloaded Python, as root)."""
