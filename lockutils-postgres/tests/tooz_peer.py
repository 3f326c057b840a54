"""A tooz PostgreSQL client driven by tests/postgres.rs and benches/pg.rs.

    tooz_peer.py hold URL NAME      take the lock (blocking), print "held",
                                    hold until stdin closes, release
    tooz_peer.py try URL NAME       print "acquired" (and release) or "busy"
    tooz_peer.py cycle URL NAME N   take and release N times, print seconds
"""
import sys
import time
import warnings

warnings.simplefilter("ignore", DeprecationWarning)

from tooz import coordination  # noqa: E402


def main():
    cmd, url, name = sys.argv[1], sys.argv[2], sys.argv[3].encode()
    coord = coordination.get_coordinator(url, b"lockutils-test")
    coord.start()
    lock = coord.get_lock(name)
    if cmd == "hold":
        lock.acquire(blocking=True)
        print("held", flush=True)
        sys.stdin.read()
        lock.release()
    elif cmd == "try":
        if lock.acquire(blocking=False):
            print("acquired", flush=True)
            lock.release()
        else:
            print("busy", flush=True)
    elif cmd == "cycle":
        n = int(sys.argv[4])
        start = time.perf_counter()
        for _ in range(n):
            lock.acquire(blocking=True)
            lock.release()
        print(time.perf_counter() - start, flush=True)
    coord.stop()


main()
