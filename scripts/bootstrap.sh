#!/usr/bin/env bash
# Set-up on a fresh machine, idempotent: system packages (python3-venv, bubblewrap), the virtualenv
# in .venv, the project.
# The venv uses Debian's /usr/bin/python3 so that the sandboxed kernels' interpreter is readable
# by an unprivileged uid (a pyenv Python under /root is not).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
[ -x /usr/bin/python3 ] || need_apt+=(python3)
/usr/bin/python3 -c "import venv, ensurepip" 2>/dev/null || need_apt+=(python3-venv)
command -v bwrap >/dev/null || need_apt+=(bubblewrap)  # the autograder's sandbox
command -v chromium >/dev/null || need_apt+=(chromium)  # the web application's browser tests (Playwright)
command -v npm >/dev/null || need_apt+=(nodejs npm)  # configurable-http-proxy, the JupyterHub tests' proxy
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing system packages: ${need_apt[*]}"
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
    else
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
    fi
fi

stamp=.venv/.installed
if [ ! -x .venv/bin/python ] || [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "creating .venv and installing the project (a few minutes on a fresh machine)"
    /usr/bin/python3 -m venv .venv
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e '.[test]'
    touch "$stamp"
fi

# JupyterHub's proxy (configurable-http-proxy, from the npm registry) in a project-local prefix .hub/,
# for the tests and benchmarks that start a real Hub on 127.0.0.1 (JupyterHub itself is the `hub` extra).
chp=.hub/node_modules/.bin/configurable-http-proxy
if [ ! -x "$chp" ]; then
    echo "installing configurable-http-proxy into .hub/ (npm)"
    mkdir -p .hub
    npm install --prefix .hub --no-audit --no-fund --loglevel=error configurable-http-proxy@5 >/dev/null
fi

# The autograder's sandbox runs kernels as uid 65534 (nobody), which must reach .venv: when it
# cannot (a checkout under a 0700 directory, as `mktemp -d` makes), let it traverse, not list,
# the directories above.
if [ "$(id -u)" -eq 0 ] && ! setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$PWD/.venv/bin/python"; then
    dir="$PWD"
    while [ "$dir" != / ]; do
        if ! setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$dir"; then
            echo "sandbox: chmod o+x $dir (the sandbox's uid 65534 must reach .venv)"
            chmod o+x "$dir"
        fi
        dir=$(dirname "$dir")
    done
fi
