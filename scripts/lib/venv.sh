# Sourced by scripts/test and scripts/bench: the interop venv (.build-venv) with the pinned
# third-party software of Tests/interop/requirements.txt, rebuilt when that file changes.
# Sets INTEROP_PYTHON. Needs `die` and `step` from the caller and python3 with venv.
ensure_interop_venv() {
    local root=$1
    local venv=$root/.build-venv req=$root/Tests/interop/requirements.txt
    local stamp=$venv/.requirements.sha256 want
    want=$(sha256sum "$req" | cut -d' ' -f1)
    if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        step "creating $venv from Tests/interop/requirements.txt"
        rm -rf "$venv"
        python3 -m venv "$venv" || die "python3 -m venv failed (apt-get install python3-venv)"
        "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" || die "pip install -r $req failed"
        echo "$want" > "$stamp"
    fi
    INTEROP_PYTHON=$venv/bin/python
}
