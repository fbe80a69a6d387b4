"""sbatch script text for plain array submission (pure functions, pinned by golden files).

Templates are readable sbatch scripts with `{{ name }}` placeholders. `base.sbatch` ships
with the package (`hpc/slurm/templates/`); a checkout's `jobs/` directory (in the directory a
sweep is launched from) overrides it file by file, as signac-flow's project templates do. A
cluster's template (`<cluster>.sbatch`, e.g. `jobs/zaratan.sbatch`) holds only the blocks it
changes; a block is the lines between `# >>> NAME` and `# <<< NAME` in `base.sbatch`.
"""

import pathlib
import re
import shlex

PACKAGED = pathlib.Path(__file__).resolve().parent / "templates"
_BLOCK = re.compile(r"^# >>> (\w+)\n(.*?)^# <<< \1\n", re.M | re.S)


def directives(
    *,
    job_name: str,
    array: str,
    output: str,
    options: dict | None = None,
    signal: str | None = None,
    requeue: bool = False,
) -> list[str]:
    """`#SBATCH` lines: the job's own, then `options` (`hpc.profile.slurm_options`: sbatch long
    names with `_` for `-`). Every value is shell-quoted; unset (None) values are left out."""
    values = {"job_name": job_name, "array": array, "output": output, **(options or {}), "signal": signal}
    lines = [f"#SBATCH --{k.replace('_', '-')}={shlex.quote(str(v))}" for k, v in values.items() if v is not None]
    return lines + (["#SBATCH --requeue"] if requeue else [])


def activation_lines(environment) -> list[str]:
    """Shell lines that make the environment a job runs in (`cluster.environment`: an
    `hpc.profile.Environment`, or its mapping, which is checked)."""
    from ..profile import Environment

    env = (
        environment
        if isinstance(environment, Environment)
        else Environment(**{k: v for k, v in (environment or {}).items() if v is not None or k != "kind"})
    )
    if env.kind == "venv":
        return [f"source {shlex.quote(str(env.venv))}/bin/activate"]
    if env.kind == "conda":
        return [
            'source "$(conda info --base)/etc/profile.d/conda.sh"',
            f"conda activate {shlex.quote(str(env.conda_env))}",
        ]
    if env.kind == "none":
        return []
    base = shlex.quote(str(env.unpack_dir)) if env.unpack_dir else '"${TMPDIR:-/tmp}"'
    return [
        "# Unpack the packed environment once per node; a lock makes concurrent tasks wait for it.",
        f"ENV_TARBALL={shlex.quote(str(env.tarball))}",
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


def _overridden(base: str, cluster: str | None) -> str:
    """`base` with its blocks replaced by those `cluster` defines (an unknown one fails naming it)."""
    if not cluster:
        return base
    blocks = {m.group(1): m.group(2) for m in _BLOCK.finditer(cluster)}
    known = {m.group(1) for m in _BLOCK.finditer(base)}
    unknown = sorted(set(blocks) - known)
    if unknown:
        raise ValueError(f"cluster template defines unknown block(s) {unknown}; base blocks: {sorted(known)}.")
    return _BLOCK.sub(lambda m: f"# >>> {m.group(1)}\n{blocks.get(m.group(1), m.group(2))}# <<< {m.group(1)}\n", base)


def render(base: str, cluster: str | None, values: dict[str, str]) -> str:
    """Fill `base`'s placeholders after replacing its blocks with those `cluster` defines.

    Not Jinja2: named blocks are the only inheritance the templates need, an unknown block or
    placeholder must fail naming it (Jinja2 renders an undefined name as empty text by
    default), and these ~20 lines spare the login and compute nodes one more dependency."""
    base = _overridden(base, cluster)

    def fill(match):
        name = match.group(1)
        if name not in values:
            raise ValueError(
                f"the sbatch template's placeholder `{{{{ {name} }}}}` has no value; "
                f"those it may use: {', '.join(sorted(values))}."
            )
        return values[name]

    return re.sub(r"\{\{ (\w+) \}\}", fill, base)


def task_setup(templates, cluster_name: str, setup: list[str], activation: list[str]) -> list[str]:
    """The shell lines a task runs before Python: the `setup` and `environment` blocks of the
    template chain (`base.sbatch`, overridden by `<cluster_name>.sbatch` in `templates`, as for
    `array_script`), filled with `setup` and `activation`. submitit's jobs run these as its
    `setup`, so `cluster=zaratan` (its `module purge`) means the same on either path."""
    dirs = [pathlib.Path(templates)] if isinstance(templates, (str, pathlib.Path)) else list(templates)
    base, cluster = _template([*dirs, PACKAGED], "base.sbatch"), _template(dirs, f"{cluster_name}.sbatch")
    blocks = {m.group(1): m.group(2) for m in _BLOCK.finditer(_overridden(base, cluster))}
    values = {"setup": "\n".join(setup) if setup else ":", "activate": "\n".join(activation) if activation else ":"}
    text = "".join(render(blocks.get(name, ""), None, values) for name in ("setup", "environment"))
    return [line for line in text.splitlines() if line.strip() not in ("", ":")]


def template_dirs(workdir) -> tuple[pathlib.Path, ...]:
    """Where templates are looked for, first match wins: `<workdir>/jobs/`, then the package's."""
    return (pathlib.Path(workdir) / "jobs", PACKAGED)


def _template(dirs, name: str) -> str | None:
    return next(((d / name).read_text() for d in dirs if (d / name).is_file()), None)


def array_script(
    templates,
    cluster_name: str,
    *,
    directive_lines: list[str],
    setup: list[str],
    activation: list[str],
    sweep_dir: str,
    workdir: str,
    entry_script: str,
    offset: int,
    results_root: str,
    runs_per_task: int = 1,
) -> str:
    """The sbatch script for one array of a manifest sweep; its runs write under `results_root`.
    `templates`: the directories to look in (`template_dirs`), first match wins."""
    dirs = [pathlib.Path(templates)] if isinstance(templates, (str, pathlib.Path)) else list(templates)
    return render(
        _template([*dirs, PACKAGED], "base.sbatch"),
        _template(dirs, f"{cluster_name}.sbatch"),
        {
            "directives": "\n".join(directive_lines),
            "setup": "\n".join(setup) if setup else ":",
            "activate": "\n".join(activation) if activation else ":",
            "sweep_dir": shlex.quote(sweep_dir),
            "results_root": shlex.quote(results_root),
            "workdir": shlex.quote(workdir),
            "entry_script": shlex.quote(entry_script),
            "offset": str(int(offset)),
            "runs_per_task": str(int(runs_per_task)),
        },
    )
