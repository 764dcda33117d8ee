"""Peak memory of an `ops` command, measured in a child process: the child reports its own
high-water RSS (VmHWM) at exit to the file named by BENCH_HWM_FILE. getrusage's ru_maxrss for
children would include the parent's size at fork, and the parent holds moto's tables and the
emulator's ledger."""

OPS_CHILD = """
import atexit, os, runpy, sys
def report():
    with open("/proc/self/status") as status, open(os.environ["BENCH_HWM_FILE"], "w") as out:
        out.write(next(line for line in status if line.startswith("VmHWM")).split()[1])
atexit.register(report)
sys.argv = ["ops", *sys.argv[1:]]
runpy.run_module("ops", run_name="__main__")
"""
