"""The ``metastasis`` command (also ``python -m metastasis``): it parses, calls, and prints.

Bad input exits with code 2 and one line ``error: <field>: <what is wrong>`` on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from metastasis import __version__
from metastasis.errors import InputError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        field, _, what = message.partition(": ")
        if field.startswith("argument "):
            raise InputError(field.removeprefix("argument ").split("/")[0], what)
        raise InputError("arguments", message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="metastasis",
                description="Simulate breast cancer spread and the care pathway for virtual cohorts.")
    p.add_argument("--version", action="version", version=f"metastasis {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("scenarios", help="list the built-in scenarios, or print one")
    s.add_argument("--show", metavar="NAME", help="print the TOML of a built-in scenario")

    s = sub.add_parser("simulate", help="simulate a cohort and write its tables")
    s.add_argument("scenario", metavar="SCENARIO", help="built-in name or path to a TOML file")
    s.add_argument("--patients", type=int, default=100_000, help="eligible patients to simulate (default 100000)")
    s.add_argument("--seed", type=int, default=None, help="random seed (default: the scenario's)")
    s.add_argument("--out", type=Path, default=None, help="output directory (default runs/<scenario name>)")
    s.add_argument("--batch-size", type=int, default=50_000,
                   help="candidates per batch (default 50000; at most --patients when every candidate is eligible)")
    s.add_argument("--workers", type=int, default=None,
                   help="worker processes of a local Dask cluster (default 1: no cluster, this process)")
    s.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="address of a running dask.distributed scheduler to run the batches on")
    s.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario or parameter key (VALUE as TOML)")
    s.add_argument("--resume", action="store_true", help="finish an interrupted run in --out")
    s.add_argument("--force", action="store_true", help="overwrite a finished run in --out")
    s.add_argument("--quiet", action="store_true", help="no progress bar, no summary")
    s.add_argument("--posterior-draws", type=int, default=None, metavar="K",
                   help="run K parameter sets of the shipped posterior sample into DIR/draw-000 ...")
    s.add_argument("--posterior", type=Path, default=None, metavar="FILE",
                   help="draw from this posterior sample instead (posterior.parquet of `metastasis calibrate`)")

    s = sub.add_parser("summary", help="headline figures of a finished run")
    s.add_argument("directory", metavar="DIR", type=Path)
    s.add_argument("--json", action="store_true", help="JSON on stdout")

    s = sub.add_parser("report", help="a self-contained HTML report of a finished run")
    s.add_argument("directory", metavar="DIR", type=Path)
    s.add_argument("--out", type=Path, default=None, metavar="FILE", help="HTML file (default DIR/report.html)")

    s = sub.add_parser("compare", help="two runs side by side: stage shift, lead time, survival, hazard ratios")
    s.add_argument("dir_a", metavar="DIR_A", type=Path)
    s.add_argument("dir_b", metavar="DIR_B", type=Path)
    s.add_argument("--report", type=Path, default=None, metavar="FILE", help="also write an HTML comparison page")

    s = sub.add_parser("parameters", help="every model parameter with unit, range, prior and source")
    s.add_argument("--json", action="store_true", help="JSON on stdout")

    s = sub.add_parser("validate", help="every calibration target: published vs simulated, tolerance, pass/fail")
    s.add_argument("--patients", type=int, default=20_000,
                   help="patients of the largest simulated settings (default 20000; others a share of it)")
    s.add_argument("--seed", type=int, default=None,
                   help="random seed of every setting (default: the scenarios' own, 1)")
    s.add_argument("--json", action="store_true", help="JSON on stdout")
    s.add_argument("--html", type=Path, default=None, metavar="FILE",
                   help="also write a page with the table and the GBSG2 curves (trial against simulated)")
    s.add_argument("--parameters", default=None, metavar="FILE",
                   help="validate with the [parameters] table of this TOML file (refine's best.toml, calibrate's "
                        "chosen.toml, a scenario) instead of the defaults, in every setting")
    s.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario or parameter key in every setting, as simulate's --set (after "
                        "--parameters)")

    s = sub.add_parser("calibrate", help="ABC-SMC fit of the calibrated parameters to the targets (pyabc)")
    s.add_argument("--population", type=int, default=200, help="particles per generation (default 200)")
    s.add_argument("--generations", type=int, default=10, help="generations to run (default 10)")
    s.add_argument("--patients", type=int, default=2_000,
                   help="patients of the largest simulated settings per model run (default 2000)")
    s.add_argument("--workers", type=int, default=None, help="local processes (default: every core)")
    s.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="address of a running dask.distributed scheduler (pyabc's Dask sampler)")
    s.add_argument("--out", type=Path, default=Path("calibration"), help="output directory (default calibration)")
    s.add_argument("--resume", action="store_true", help="continue the run whose history is in --out")
    s.add_argument("--seed", type=int, default=1, help="random seed of the sampler and the simulations")
    s.add_argument("--quiet", action="store_true", help="no progress lines")

    s = sub.add_parser("refine", help="coordinate search of the calibrated parameters on the validation misses")
    s.add_argument("--patients", type=int, default=10_000,
                   help="patients of the largest simulated settings per evaluation (default 10000)")
    s.add_argument("--sweeps", type=int, default=10, help="passes over the parameters at most (default 10)")
    s.add_argument("--workers", type=int, default=1, help="local processes: the two points of a move (default 1)")
    s.add_argument("--parameter", action="append", default=[], metavar="NAME",
                   help="move only this calibrated parameter (repeatable; default all)")
    s.add_argument("--out", type=Path, default=Path("refine"), help="output directory (default refine)")
    s.add_argument("--resume", action="store_true", help="continue the search whose log is in --out")
    s.add_argument("--seed", dest="seeds", type=int, action="append", default=[], metavar="N",
                   help="validate every point at this seed (repeatable: scores are means over the seeds; "
                        "default the scenarios' own)")
    s.add_argument("--parameters", default=None, metavar="FILE",
                   help="start from the [parameters] table of this TOML file: its calibrated parameters are the "
                        "starting point, the others it names are held fixed in every evaluation")
    s.add_argument("--objective", default="miss",
                   help="what a move must improve: miss, the miss score (default), or rows, the rows passing "
                        "first and the miss score on ties")
    s.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def _scenarios(args: argparse.Namespace) -> None:
    from metastasis import scenario

    if args.show:
        sys.stdout.write(scenario.scenario_text(args.show))
        return
    for name, description in scenario.builtin_descriptions().items():
        print(f"{name:<28} {description}")


def _simulate(args: argparse.Namespace) -> None:
    from metastasis import analysis, runner, scenario

    overrides = list(args.overrides)
    if args.seed is not None:
        if args.seed < 0:
            raise InputError("--seed", f"must be >= 0 (got {args.seed})")
        overrides.append(f"seed={args.seed}")
    sc = scenario.load_scenario(args.scenario, overrides)
    out = args.out if args.out is not None else Path("runs") / sc.name
    if args.scheduler is not None and args.workers is not None:
        raise InputError("--workers", "give --workers K for a local cluster or --scheduler ADDRESS, not both")
    workers = 1 if args.workers is None else args.workers
    # Without eligibility criteria every candidate is a patient: a batch beyond --patients would be discarded.
    batch_size = args.batch_size if sc.cohort.restricts_eligibility else min(args.batch_size, max(args.patients, 1))
    req = runner.RunRequest(sc, args.patients, out, batch_size, workers, args.resume, args.force,
                            args.quiet, scheduler=args.scheduler)
    if args.posterior is not None and args.posterior_draws is None:
        raise InputError("--posterior", "needs --posterior-draws K (how many of its particles to run)")
    if args.posterior_draws is not None:
        from metastasis.calibration import posterior

        posterior.simulate_draws(req, args.posterior_draws, args.posterior)
        if not args.quiet:
            print(f"wrote {out}")
            print(posterior.format_summary(posterior.summary(out)))
        return
    runner.run(req)
    if not args.quiet:
        print(f"wrote {out}")
        print(analysis.format_summary(analysis.summary(out)))


def _summary(args: argparse.Namespace) -> None:
    from metastasis import analysis
    from metastasis.calibration import posterior

    if posterior.is_draws_run(args.directory):
        s = posterior.summary(args.directory)
        print(json.dumps(s, indent=2) if args.json else posterior.format_summary(s))
        return
    s = analysis.summary(args.directory)
    print(json.dumps(s, indent=2) if args.json else analysis.format_summary(s))


def _html_target(path: Path, option: str) -> Path:
    if path.is_dir():
        raise InputError(option, f"{path} is a directory; give a file name such as {path / 'report.html'}")
    if not path.parent.is_dir():
        raise InputError(option, f"directory {path.parent} does not exist")
    return path


def _report(args: argparse.Namespace) -> None:
    from metastasis.report import write_report
    from metastasis.results import load

    run = load(args.directory)
    out = _html_target(args.out if args.out is not None else run.directory / "report.html", "--out")
    print(f"wrote {write_report(run.directory, out)}")


def _compare(args: argparse.Namespace) -> None:
    from metastasis.comparison import compare_runs, format_comparison
    from metastasis.results import load

    a, b = load(args.dir_a, "DIR_A"), load(args.dir_b, "DIR_B")
    target = _html_target(args.report, "--report") if args.report is not None else None
    comparison = compare_runs(a, b)
    print(format_comparison(comparison))
    if target is not None:
        from metastasis.report import write_comparison

        print(f"wrote {write_comparison(a, b, target, comparison)}")


def _parameters(args: argparse.Namespace) -> None:
    from metastasis.parameters import REGISTRY

    if args.json:
        print(json.dumps([p.as_dict() for p in REGISTRY.values()], indent=2))
        return
    print(f"{'name':<48} {'default':>12} {'unit':<34} {'range':<22} {'prior':<30} source")
    for p in REGISTRY.values():
        prior = f"{p.prior[0]}({p.prior[1]:.3g}, {p.prior[2]:.3g})" if p.prior else ""
        print(f"{p.name:<48} {p.default:>12.4g} {p.unit:<34} {f'[{p.low:g}, {p.high:g}]':<22} {prior:<30} {p.source}")


def _validate(args: argparse.Namespace) -> None:
    from metastasis.calibration import validate

    if args.seed is not None and args.seed < 0:
        raise InputError("--seed", f"must be >= 0 (got {args.seed})")
    if args.html is not None and not args.html.parent.is_dir():
        raise InputError("--html", f"the directory of {args.html} does not exist")
    from metastasis.scenario import parameter_overrides

    overrides = (*(parameter_overrides(args.parameters) if args.parameters is not None else ()), *args.overrides)
    table, sims = validate.validation_and_simulations(args.patients, seed=args.seed, scenario_overrides=overrides)
    if args.html is not None:
        from metastasis.calibration.gbsg2 import curves
        from metastasis.report.validation_page import write_validation_page

        write_validation_page(table, curves(sims), args.html, args.patients, args.seed, overrides)
    print(json.dumps(validate.table_json(table), indent=2) if args.json else validate.format_table(table))


def _calibrate(args: argparse.Namespace) -> None:
    from metastasis.calibration import calibrate

    posterior = calibrate.run(calibrate.CalibrationRequest(
        out=args.out, population=args.population, generations=args.generations, patients=args.patients,
        workers=args.workers, scheduler=args.scheduler, resume=args.resume, seed=args.seed, quiet=args.quiet))
    if not args.quiet:
        generation = int(posterior["generation"].iloc[0]) + 1 if len(posterior) else 0
        print(f"wrote {args.out / 'posterior.parquet'} and {args.out / 'chosen.toml'} "
              f"({len(posterior)} particles of generation {generation}; history in {args.out / 'history.db'})")


def _refine(args: argparse.Namespace) -> None:
    from metastasis.calibration import search

    x, best = search.run(search.SearchRequest(
        out=args.out, patients=args.patients, sweeps=args.sweeps, workers=args.workers, resume=args.resume,
        parameters=tuple(args.parameter) or None, quiet=args.quiet, seeds=tuple(args.seeds),
        objective=args.objective, start=args.parameters))
    if not args.quiet:
        print(f"wrote {args.out / 'best.toml'} (miss score {best[0]:.2f}, {best[1]:g} rows passing; "
              f"log in {args.out / 'search.jsonl'})")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    try:
        args = _parser().parse_args(argv)
        {"scenarios": _scenarios, "simulate": _simulate, "summary": _summary, "parameters": _parameters,
         "report": _report, "compare": _compare, "validate": _validate, "calibrate": _calibrate,
         "refine": _refine}[args.command](args)
    except InputError as err:
        print(f"error: {err.field}: {err.message}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except OSError as err:
        print(f"error: {err.filename or 'file'}: {err.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted: finished batches are kept; rerun with --resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
