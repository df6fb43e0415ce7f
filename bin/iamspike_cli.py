"""The CLI from the unpacked app: ``python3.13 TA-aws-iam-error-spike/bin/iamspike_cli.py PATH ...``.

Runs the ``iamspike`` engine on CloudTrail files (see ``iamspike/cli.py``) with the app's vendored
libraries, which serve Splunk's interpreters (3.9 and 3.13) only. On any other Python it says in
one line what to run instead and exits 2 (a checkout runs the CLI as ``python -m iamspike``, an
installed one as ``iamspike``). This file stays readable by any Python (no f-strings, no
annotations) so that even Python 2 gets the line rather than a SyntaxError.
"""

import os
import sys

SUPPORTED = ((3, 9), (3, 13))


def unsupported(script):
    """The one line for an interpreter the app's libraries do not serve."""
    here = "%d.%d" % sys.version_info[:2]  # noqa: UP031 (this file must parse on any Python)
    return (
        "iamspike_cli.py: the app's libraries serve Python 3.9 and 3.13, not " + here + ": run "
        "'python3.13 " + script + " PATH ...' (or python3.9), or install the iamspike command "
        "with 'pipx install <TA-aws-iam-error-spike source>' (README: The CLI)\n"
    )


def _enter():
    if tuple(sys.version_info[:2]) not in SUPPORTED:
        sys.stderr.write(unsupported(sys.argv[0]))
        return 2
    from iamspike_splunk import vendor

    try:
        vendor.add_vendored_paths()
        from iamspike import cli
    except ImportError as exc:  # a checkout without `make package` and without numpy
        sys.stderr.write("iamspike_cli.py: " + str(exc).splitlines()[0] + " (run `make package`)\n")
        return 2
    return cli.main(prog=os.path.basename(sys.argv[0]))


if __name__ == "__main__":
    sys.exit(_enter())
