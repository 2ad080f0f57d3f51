"""Per-message cost of otp-pro-html-email's cached path against rendering + premailer for every message.

Both paths produce the same branded code email. In one run they alternate, one
message each, so that machine noise hits both alike:

- cached: the compiled template whose CSS was inlined once at start-up; a send
  only renders the variables (what the plugin does);
- per message: render the template as written, then run premailer on the
  result (what a plugin without the cache would do for every send).

    python bench/html_email_cache.py [-n 200]

Prints the median, the spread (10th-90th percentile, min, max) of each path
and the ratio of the medians; exits with status 1 when the cached path is
less than 20 times faster.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from otp_pro import OtpPro
from otp_pro_html_email import inline
from otp_pro_html_email.plugin import templates_for
from otp_pro_html_email.samples import sample_variables

REQUIRED_RATIO = 20.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def describe(name: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (f"{name:<24} median {statistics.median(ms):9.3f} ms   p10-p90 {percentile(ms, 0.1):8.3f}-"
            f"{percentile(ms, 0.9):8.3f} ms   min {min(ms):8.3f}   max {max(ms):8.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--messages", type=int, default=200, help="messages per path (default 200)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        otp = OtpPro({"secret_key": "bench-" + "x" * 40, "database_url": f"sqlite:///{Path(folder)}/bench.sqlite3",
                      "site_name": "Acme", "support_email": "help@acme.example"})
        try:
            templates = templates_for(otp)
            raw_html = templates.check_env.get_template("code.html")  # as written, CSS in a <style> block
            base = sample_variables(otp, "code")
            cached: list[float] = []
            uncached: list[float] = []
            for n in range(args.messages + 5):
                variables = {**base, "payload": f"{n % 1_000_000:06d}", "member_name": f"Member {n}"}
                start = time.perf_counter()
                fast = templates.render("code", variables).html
                middle = time.perf_counter()
                slow = inline.transform(raw_html.render(templates.context(variables)))
                end = time.perf_counter()
                assert variables["payload"] in fast and variables["payload"] in slow
                if n >= 5:  # the first few warm caches (cssutils, lxml) for both
                    cached.append(middle - start)
                    uncached.append(end - middle)
        finally:
            otp.close()
    ratio = statistics.median(uncached) / statistics.median(cached)
    print(f"{args.messages} messages per path, alternating, Python {sys.version.split()[0]}")
    print(describe("cached (inlined once)", cached))
    print(describe("render + premailer", uncached))
    print(f"ratio of medians: {ratio:.1f}x (required: at least {REQUIRED_RATIO:.0f}x)")
    return 0 if ratio >= REQUIRED_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
