"""sbatch script text for plain array submission (pure functions, pinned by golden files).

Templates in `jobs/` are readable sbatch scripts with `{{ name }}` placeholders. A cluster's
template (`jobs/<cluster>.sbatch`) holds only the blocks it changes; a block is the lines
between `# >>> NAME` and `# <<< NAME` in `jobs/base.sbatch`.
"""

import pathlib
import re
import shlex

ENVIRONMENT_KINDS = ("none", "packed", "conda", "venv")
_BLOCK = re.compile(r"^# >>> (\w+)\n(.*?)^# <<< \1\n", re.M | re.S)


def directives(*, job_name: str, array: str, output: str, partition: str | None = None,
               account: str | None = None, qos: str | None = None, time_min: int | None = None,
               cpus_per_task: int | None = None, mem_per_cpu_mb: int | None = None,
               gpus_per_task: int | None = None, signal: str | None = None,
               requeue: bool = False) -> list[str]:
    """`#SBATCH` lines; the signature is the whitelist of what may be set. `_` becomes `-`,
    every value is shell-quoted, unset (None, 0 GPUs) values are left out."""
    values = dict(job_name=job_name, array=array, output=output, partition=partition, account=account,
                  qos=qos, time=time_min, cpus_per_task=cpus_per_task,
                  mem_per_cpu=f"{mem_per_cpu_mb}M" if mem_per_cpu_mb else None,
                  gpus_per_task=gpus_per_task or None, signal=signal)
    lines = [f"#SBATCH --{k.replace('_', '-')}={shlex.quote(str(v))}" for k, v in values.items() if v is not None]
    return lines + (["#SBATCH --requeue"] if requeue else [])


def signal_before_s(cluster: dict) -> int:
    """Seconds before the time limit at which a task gets SIGUSR2 to checkpoint and requeue:
    `cluster.signal_before_s`, else a tenth of the limit, at least 20 s and at most 5 min
    (Slurm may send it up to 60 s earlier than asked)."""
    if cluster.get("signal_before_s"):
        return int(cluster["signal_before_s"])
    return int(min(300, max(20, int(cluster["time_min"]) * 60 // 10)))


def activation_lines(environment: dict | None) -> list[str]:
    """Shell lines that make the environment a job runs in (`cluster.environment`)."""
    env = environment or {}
    kind = env.get("kind") or "none"
    if kind not in ENVIRONMENT_KINDS:
        raise ValueError(f"`cluster.environment.kind`={kind!r}; allowed: {', '.join(ENVIRONMENT_KINDS)}.")
    if kind == "none":
        return []
    if kind == "venv":
        if not env.get("venv"):
            raise ValueError("`cluster.environment.venv` must name the venv directory for kind 'venv'.")
        return [f"source {shlex.quote(str(env['venv']))}/bin/activate"]
    if kind == "conda":
        if not env.get("conda_env"):
            raise ValueError("`cluster.environment.conda_env` must name the environment for kind 'conda'.")
        return ['source "$(conda info --base)/etc/profile.d/conda.sh"',
                f"conda activate {shlex.quote(str(env['conda_env']))}"]
    if not env.get("tarball"):
        raise ValueError("`cluster.environment.tarball` must name the `hpc pack` tarball for kind 'packed'.")
    base = shlex.quote(str(env["unpack_dir"])) if env.get("unpack_dir") else '"${TMPDIR:-/tmp}"'
    return [
        "# Unpack the packed environment once per node; a lock makes concurrent tasks wait for it.",
        f"ENV_TARBALL={shlex.quote(str(env['tarball']))}",
        f"UNPACK_BASE={base}",
        'ENV_DIR="$UNPACK_BASE/$(basename "$ENV_TARBALL" .tar.gz)"',
        'mkdir -p "$UNPACK_BASE"',
        "(",
        "    flock 9",
        '    if [ ! -e "$ENV_DIR/.unpacked" ]; then',
        '        rm -rf "$ENV_DIR" && mkdir -p "$ENV_DIR"',
        '        tar -xzf "$ENV_TARBALL" -C "$ENV_DIR"',
        "        # conda-pack: conda-unpack fixes prefixes for this path only; never move ENV_DIR after",
        '        if [ -e "$ENV_DIR/bin/conda-unpack" ]; then (source "$ENV_DIR/bin/activate" && conda-unpack); fi',
        '        touch "$ENV_DIR/.unpacked"',
        '        echo "hpc: unpacked $ENV_TARBALL into $ENV_DIR on $(hostname)"',
        "    else",
        '        echo "hpc: reusing $ENV_DIR on $(hostname)"',
        "    fi",
        ') 9>"$ENV_DIR.lock"',
        'source "$ENV_DIR/bin/activate"',
    ]


def render(base: str, cluster: str | None, values: dict[str, str]) -> str:
    """Fill `base`'s placeholders after replacing its blocks with those `cluster` defines.

    Not Jinja2: named blocks are the only inheritance the templates need, an unknown block or
    placeholder must fail naming it (Jinja2 renders an undefined name as empty text by
    default), and these ~20 lines spare the login and compute nodes one more dependency."""
    if cluster:
        blocks = {m.group(1): m.group(2) for m in _BLOCK.finditer(cluster)}
        known = {m.group(1) for m in _BLOCK.finditer(base)}
        unknown = sorted(set(blocks) - known)
        if unknown:
            raise ValueError(f"cluster template defines unknown block(s) {unknown}; base blocks: {sorted(known)}.")
        base = _BLOCK.sub(lambda m: f"# >>> {m.group(1)}\n{blocks.get(m.group(1), m.group(2))}# <<< {m.group(1)}\n", base)

    def fill(match):
        name = match.group(1)
        if name not in values:
            raise KeyError(f"template placeholder `{name}` has no value")
        return values[name]

    return re.sub(r"\{\{ (\w+) \}\}", fill, base)


def array_script(templates: pathlib.Path, cluster_name: str, *, directive_lines: list[str], setup: list[str],
                 activation: list[str], sweep_dir: str, workdir: str, entry_script: str, offset: int,
                 results_root: str) -> str:
    """The sbatch script for one array of a manifest sweep; its runs write under `results_root`."""
    base = (templates / "base.sbatch").read_text()
    own = templates / f"{cluster_name}.sbatch"
    return render(base, own.read_text() if own.exists() else None, {
        "directives": "\n".join(directive_lines),
        "setup": "\n".join(setup) if setup else ":",
        "activate": "\n".join(activation) if activation else ":",
        "sweep_dir": shlex.quote(sweep_dir),
        "results_root": shlex.quote(results_root),
        "workdir": shlex.quote(workdir),
        "entry_script": shlex.quote(entry_script),
        "offset": str(int(offset)),
    })
