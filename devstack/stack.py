"""`make run`: tracekit's whole local stack in one process tree on 127.0.0.1, stopped by Ctrl-C.

- moto stands in for AWS (DynamoDB, SQS, S3), served one request at a time (devstack.moto_server);
  resources come from infra/resources.json.
- The local Stripe emulator stands in for Stripe, unless STRIPE_SECRET_KEY and
  STRIPE_WEBHOOK_SECRET are set to real test-mode values, in which case real Stripe is used.
- The synthetic register is loaded with the operator CLI, the command real data goes through.
- The app runs under `chalice local` (devstack.local_api adds API Gateway's gateway responses);
  the staff console, a Chalice app of its own, beside it on its own port.
- Demo staff (one per user pool group, FICTITIOUS) and one paid demo order are made at start-up,
  so support has an order to find and refund and finance a charge and a refund to reconcile.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from devstack.aws import create_resources
from devstack.demo import place_demo_order
from devstack.mailbox import MailBox
from devstack.scheduler import LocalScheduler
from devstack.staff import create_demo_staff
from devstack.synthetic_register import DEMO_HOLDERS, LOCAL_FREE_KIT_AREAS

ROOT = Path(__file__).resolve().parent.parent
OPERATOR_ENV_FILE = ROOT / ".tracekit-local.env"  # git-ignored; ops reads it (ops/cli/common.py)
REGION = "eu-west-2"
HOST = "127.0.0.1"
SCHEDULED_HANDLERS = (
    "sweep_lapsed_holds",
    "relay_unsent_fulfilments",
    "report_fulfilment_health",
    "sweep_expired_attempts",
    "purge_personal_data",
    "export_daily_reconciliation",
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app-port", type=int, default=int(os.environ.get("APP_PORT", 8000)))
    parser.add_argument("--console-port", type=int, default=int(os.environ.get("CONSOLE_PORT", 8001)))
    parser.add_argument(
        "--staff-mfa",
        choices=("on", "off"),
        default=os.environ.get("STAFF_MFA", "off"),
        help="whether the demo staff sign in with an authenticator app code too (production requires it; "
        "moto accepts any 6 digits)",
    )
    parser.add_argument("--moto-port", type=int, default=int(os.environ.get("MOTO_PORT", 5001)))
    parser.add_argument("--stripe-port", type=int, default=int(os.environ.get("STRIPE_PORT", 12111)))
    parser.add_argument(
        "--schedule-seconds",
        type=float,
        default=float(os.environ.get("SCHEDULE_SECONDS", 60)),
        help="how often the scheduled handlers run (they run every 15 minutes in AWS)",
    )
    parser.add_argument(
        "--register",
        type=Path,
        default=None,
        help="a register CSV to load (default: the synthetic register, written afresh for today "
        "to artefacts/synthetic_register.csv)",
    )
    parser.add_argument("--mail-folder", type=Path, default=ROOT / "artefacts" / "mail")
    parser.add_argument(
        "--operator-env-file",
        type=Path,
        default=OPERATOR_ENV_FILE,
        help="where to write the stack's settings for the operator CLI (ops reads another one named by "
        "TRACEKIT_ENV_FILE)",
    )
    return parser.parse_args(argv)


def start_moto(port: int):
    """moto on loopback, one request at a time (devstack.moto_server: its own server races)."""
    from devstack.moto_server import start_moto_server

    return start_moto_server(port)


def use_real_stripe() -> bool:
    return bool(os.environ.get("STRIPE_SECRET_KEY") and os.environ.get("STRIPE_WEBHOOK_SECRET"))


def start_stripe(port: int, app_url: str):
    """The emulator, signing webhooks with a fresh secret; None when real Stripe is configured."""
    if use_real_stripe():
        return None, {}
    from devstack.stripe_emulator import StripeEmulator

    secret = "whsec_local_" + secrets.token_hex(16)
    emulator = StripeEmulator(host=HOST, port=port, webhook_url=f"{app_url}/stripe/webhook", webhook_secret=secret)
    emulator.start()
    return emulator, {
        "STRIPE_SECRET_KEY": "sk_test_local_emulator",
        "STRIPE_WEBHOOK_SECRET": secret,
        "STRIPE_API_BASE": emulator.base_url,
    }


def app_environment(
    resources: dict[str, str], moto_url: str, app_url: str, stripe_env: dict[str, str], console_url: str = ""
) -> dict[str, str]:
    """This process's environment with the stack's settings (`stack_settings`) on top."""
    return {**os.environ, **stack_settings(resources, moto_url, app_url, stripe_env, console_url)}


def stack_settings(
    resources: dict[str, str],
    moto_url: str,
    app_url: str,
    stripe_env: dict[str, str],
    console_url: str = "",
) -> dict[str, str]:
    """What the stack configures the app with. Fresh secrets every run: the local stack's data
    lives only as long as the process."""
    return {
        **resources,
        **stripe_env,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": moto_url,
        "REGISTER_KEY": secrets.token_urlsafe(32),
        "JOURNEY_KEY": secrets.token_urlsafe(32),
        "APP_BASE_URL": app_url,
        **({"CONSOLE_BASE_URL": console_url} if console_url else {}),
        "FREE_KIT_AREAS": LOCAL_FREE_KIT_AREAS,
        "STAGE": "local",
        "COOKIE_SECURE": "false",
        "CAMPAIGN_CONTACT_EMAIL": "enquiries@tracekit.invalid",  # fictitious
        "PYTHONUNBUFFERED": "1",
    }


def write_operator_file(settings: dict[str, str], path: Path = OPERATOR_ENV_FILE) -> Path:
    """The running stack's settings (`stack_settings`), secrets included, as KEY=value lines for the
    operator CLI: mode 0600 from its creation, renamed into place whole. Removed when the stack stops."""
    lines = [f"{name}={value}" for name, value in sorted(settings.items()) if name != "PYTHONUNBUFFERED"]
    if any("\n" in line for line in lines):
        raise ValueError("a setting holds a line break: it cannot be written as a KEY=value line")
    part = path.with_name(path.name + ".part")
    part.unlink(missing_ok=True)
    descriptor = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write("# Written by `make run` for the stack it is running; removed when it stops.\n")
        out.write("\n".join(lines) + "\n")
    os.replace(part, path)
    return path


def remove_operator_file(path: Path = OPERATOR_ENV_FILE) -> None:
    path.unlink(missing_ok=True)


def write_synthetic_register(path: Path) -> Path:
    """Today's synthetic register: its expiry dates are counted from today, so the demo holders are
    in force (or expired) on whatever day the stack starts."""
    from devstack.synthetic_register import LOCAL_EXTRA_ROWS, write_register

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as out:
        write_register(out, LOCAL_EXTRA_ROWS)
    return path


def import_register(env: dict[str, str], csv_file: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "ops", "register", "import", "--yes", str(csv_file)], env=env, cwd=ROOT, check=True
    )


def start_app(env: dict[str, str], port: int, console: bool = False) -> subprocess.Popen:
    """`chalice local`, with API Gateway's gateway responses in front (devstack.local_api): the
    holder's app, or (`console`) the staff console's."""
    command = [sys.executable, "-m", "devstack.local_api", "--host", HOST, "--port", str(port), "--stage", "local"]
    return subprocess.Popen(command + (["--console"] if console else []), env=env, cwd=ROOT)


def wait_until_serving(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    """Poll the app until it answers (bandit B310 is excused below: the URL is our own loopback one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"chalice local exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # nosec B310
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def operator_line(path: Path) -> str:
    """The banner's line on how the operator CLI finds this stack's settings."""
    named = path.name if path == OPERATOR_ENV_FILE else f"{path} (named by TRACEKIT_ENV_FILE)"
    return f"  Operator CLI: `.venv/bin/python -m ops …` reads {named} (the environment wins)"


def print_banner(
    app_url: str,
    moto_url: str,
    emulator,
    mail_folder: Path,
    operator_file: Path,
    console_url: str = "",
    staff=(),
    demo_order: str | None = None,
) -> None:
    stripe = (
        f"local emulator at {emulator.base_url}" if emulator else "REAL Stripe (test mode keys from the environment)"
    )
    print("\n  tracekit local stack is running (Ctrl-C stops everything)\n")
    print(f"  App:     {app_url}/")
    if console_url:
        print(f"  Console: {console_url}/ (staff sign in with the users below)")
    print(f"  AWS:     moto at {moto_url}")
    print(f"  Stripe:  {stripe}")
    if emulator:
        print(f"           its dashboard (refunds, disputes, async payments): {emulator.base_url}/_emulator")
    print(f"  Mail:    what the app emails (moto's SES) is written to {mail_folder}/ as it is sent")
    print(f"  Timers:  {', '.join(SCHEDULED_HANDLERS)} run in-process")
    print(operator_line(operator_file) + "\n")
    print("  Demo certificates (FICTITIOUS):")
    for case, (reference, _type, _status, _expiry, postcode, _free) in DEMO_HOLDERS.items():
        print(f"    {case:<29} reference {reference:<11} postcode {postcode}")
    if staff:
        print("\n  Demo staff (FICTITIOUS; passwords are new each run):")
        for member in staff:
            print(f"    {member.group:<15} {member.username:<38} password {member.password}")
    if demo_order:
        print(f"\n  Demo order (paid, for support to find and refund): {demo_order}")
    print("", flush=True)


def _stop_on_sigterm() -> None:
    """SIGTERM (from a supervisor or `timeout`) stops the stack as cleanly as Ctrl-C does. Once:
    a second SIGTERM must not break off the stopping of the children half-way."""

    def interrupt(_signum, _frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def main(argv=None) -> None:
    args = parse_args(argv)
    _stop_on_sigterm()
    app_url = f"http://{HOST}:{args.app_port}"
    console_url = f"http://{HOST}:{args.console_port}"
    moto, moto_url = start_moto(args.moto_port)
    emulator, app, console, scheduler, mailbox = None, None, None, None, None
    try:
        os.environ.update({"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"})
        resources = create_resources("local", moto_url, REGION)
        emulator, stripe_env = start_stripe(args.stripe_port, app_url)
        settings = stack_settings(resources, moto_url, app_url, stripe_env, console_url)
        env = {**os.environ, **settings}
        write_operator_file({**settings, "TRACEKIT_API_URL": app_url}, args.operator_env_file)  # and the client's
        import_register(env, args.register or write_synthetic_register(ROOT / "artefacts" / "synthetic_register.csv"))
        app = start_app(env, args.app_port)
        console = start_app(env, args.console_port, console=True)
        wait_until_serving(app_url + "/", app)
        wait_until_serving(console_url + "/sign-in", console)
        staff = create_demo_staff(moto_url, REGION, settings["STAFF_USER_POOL_ID"], mfa=args.staff_mfa == "on")
        demo_order = place_demo_order(env, emulator) if emulator else None
        scheduler = LocalScheduler(env, SCHEDULED_HANDLERS, interval=args.schedule_seconds)
        scheduler.start()
        mailbox = MailBox(args.mail_folder, REGION)
        mailbox.start()
        print_banner(
            app_url, moto_url, emulator, mailbox.folder, args.operator_env_file, console_url, staff, demo_order
        )
        _wait_for_either(app, console)
    except KeyboardInterrupt:
        print("\nStopping the local stack…")
    finally:
        remove_operator_file(args.operator_env_file)
        if mailbox is not None:
            mailbox.stop()
        _stop((app, console), emulator, moto, scheduler)


def _wait_for_either(*processes: subprocess.Popen) -> None:
    """Until Ctrl-C, or one of the apps exits (the stack is then not whole: it stops)."""
    while all(process.poll() is None for process in processes):
        time.sleep(0.5)
    raise SystemExit("an app of the local stack exited; stopping the rest")


def _stop(apps, emulator, moto, scheduler) -> None:
    if scheduler is not None:
        scheduler.stop()
    for app in apps:
        if app is not None and app.poll() is None:
            app.terminate()
    for app in apps:
        if app is not None:
            try:
                app.wait(timeout=10)
            except subprocess.TimeoutExpired:
                app.kill()
    if emulator is not None:
        emulator.stop()
    moto.stop()


if __name__ == "__main__":
    main()
