#!/usr/bin/env python3
"""keyseal's benchmarks at 1 to 100,000 entries, beside the peers a user
would otherwise pick. Run through scripts/bench, which installs the tools and
builds the binaries first; see docs/PERFORMANCE.md for what each table means.

Everything happens in a throw-away directory (vaults, key files, a GnuPG home,
password stores, KeePassXC databases, the agents' sockets), removed on exit
together with the processes it started. Nothing of the user's is read or
touched. Results (hyperfine's markdown and JSON, memory, sizes, the profile,
the summary and the plot) go to BENCH_OUT (.build-bench).
"""
import base64
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

KEYSEAL, HELLO, OUT, CFLOOR = sys.argv[1:5]
SIZES = [int(s) for s in os.environ.get("BENCH_SIZES", "1 1000 10000 100000").split()]
IMPORT_SIZES = [int(s) for s in os.environ.get("BENCH_IMPORT_SIZES", "10000 100000").split()]
MAX_RUNS = os.environ.get("BENCH_MAX_RUNS", "300")
WARMUP = os.environ.get("BENCH_WARMUP", "10")
TABLES = os.environ.get("BENCH_TABLES", "floors header-scale read-scale write-scale keepassxc import memory sizes kdf profile").split()
ENTRY = "api-bench"

def say(text):
    print(f"== {text}", file=sys.stderr, flush=True)

def label(n):
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)

work = tempfile.mkdtemp(prefix="keyseal-bench.")
run_dir = os.path.join(work, "run")
os.mkdir(run_dir, 0o700)
env = {k: v for k, v in os.environ.items()
       if not k.startswith("KEYSEAL_") and k not in ("GNUPGHOME", "PASSWORD_STORE_DIR")}
env.update(XDG_RUNTIME_DIR=run_dir, GNUPGHOME=os.path.join(work, "gnupg"), LC_ALL="C.UTF-8")
passphrase_file = os.path.join(work, "passphrase")
keyfile = os.path.join(work, "vault.key")
started_processes = []

def private_file(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)

def run(args, stdin=None, extra_env=None, check=True, capture=True):
    e = dict(env, **(extra_env or {}))
    result = subprocess.run(args, input=stdin, env=e, capture_output=capture)
    if check and result.returncode != 0:
        sys.stderr.write(result.stderr.decode(errors="replace") if capture else "")
        raise SystemExit(f"scripts/bench: failed ({result.returncode}): {' '.join(args)}")
    return result

def with_passphrase():
    return {"KEYSEAL_PASSPHRASE_FILE": passphrase_file}

def vault(n):
    return os.path.join(work, f"v{n}.db")

def cleanup():
    run([KEYSEAL, "lock", "--vault", vault(SIZES[0])], check=False)
    run(["gpgconf", "--kill", "all"], check=False)
    shutil.rmtree(work, ignore_errors=True)

# ---------------------------------------------------------------------------
# The world: one vault made empty, then copied per size (so one vault key, one
# key file and one agent serve them all, and the tables differ only in
# --vault), filled by keyseal import from a JSON export.

def secret_text(i=None):
    return base64.b64encode(os.urandom(48)).decode()   # 64 characters

MEASURED_SECRET = secret_text()
NOW = int(time.time())

def export_json(n, path):
    """n entries: n-1 filler entries and the measured one half-way. A mix of
    kinds and expiries like a real vault: some expired, some expiring within
    the default 14-day window, many never expiring."""
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write('{"format":"keyseal-export","version":1,"sealed":false,"exported_at":"2026-11-30T00:00:00Z",'
                f'"entry_count":{n},"entries":[\n')
        kinds = [("token", "Authorization: Bearer {secret}", None), ("api-key", "Authorization: {secret}", None),
                 ("pat", "Authorization: Bearer {secret}", None), ("token", "X-API-Key: {secret}", None)]
        for i in range(n):
            if i == n // 2:
                record = {"name": ENTRY, "kind": "pat", "header_template": "Authorization: Bearer {secret}",
                          "url": None, "description": "the measured entry", "expires_at": NOW + 200 * 86400,
                          "secret": MEASURED_SECRET}
            else:
                kind, template, url = kinds[i % len(kinds)]
                r = i % 100
                expires = None if r < 30 else NOW - 86400 * (1 + r) if r < 32 else NOW + 86400 * (r % 14 + 1) if r < 37 \
                    else NOW + 86400 * (30 + r * 3)
                record = {"name": f"svc-{i:06d}", "kind": kind, "header_template": template, "url": url,
                          "description": f"service {i}, environment {('prod', 'staging', 'dev')[i % 3]}",
                          "expires_at": expires, "secret": secret_text()}
            record.update(created_at=NOW - 86400, updated_at=NOW - 86400, last_used_at=None, warn_within=None,
                          max_age=None, ca_certificates=None, remote_id=None, remote_state=None, previous=[])
            f.write(("," if i else "") + json.dumps(record, separators=(",", ":")) + "\n")
        f.write("]}\n")

def make_world():
    private_file(passphrase_file, b"bench passphrase, throw-away\n")
    private_file(os.path.join(work, "secret"), MEASURED_SECRET.encode())
    private_file(os.path.join(work, "secret2"), secret_text().encode())
    base = os.path.join(work, "base.db")
    say(f"making throw-away vaults in {work}")
    run([KEYSEAL, "init", "--vault", base], extra_env=with_passphrase())      # the default KDF preset
    run([KEYSEAL, "key", "add", "--vault", base, "--keyfile", keyfile], extra_env=with_passphrase())
    for n in SIZES:
        shutil.copyfile(base, vault(n))
        os.chmod(vault(n), 0o600)
        export = os.path.join(work, f"export-{n}.json")
        export_json(n, export)
        started = time.monotonic()
        run([KEYSEAL, "import", "--vault", vault(n), "--apply", export], extra_env={"KEYSEAL_KEYFILE": keyfile})
        say(f"vault of {n} entries filled by import in {time.monotonic() - started:.1f} s")
        count = run(["sqlite3", "-readonly", vault(n), "SELECT count(*) FROM entries"]).stdout.decode().strip()
        assert int(count) == n, f"expected {n} entries in {vault(n)}, found {count}"
    # One agent for every copy: they share the vault id.
    run([KEYSEAL, "unlock", "--vault", vault(SIZES[0]), "--timeout", "120m"], extra_env=with_passphrase())

    # age: the same 64-byte secret in one file.
    run(["age-keygen", "-o", os.path.join(work, "age-key.txt")])
    recipient = run(["age-keygen", "-y", os.path.join(work, "age-key.txt")]).stdout.decode().strip()
    run(["age", "-r", recipient, "-o", os.path.join(work, "secret.age"), os.path.join(work, "secret")])

    # pass: a GnuPG key without passphrase, a warm gpg-agent, and one store per
    # size (filler files are copies of one encrypted file: pass ls and the
    # file system see N entries; pass show decrypts only the measured one).
    os.mkdir(env["GNUPGHOME"], 0o700)
    run(["gpg", "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", "",
         "--quick-gen-key", "keyseal bench <bench@keyseal.invalid>", "future-default", "default", "never"])
    listing = run(["gpg", "--batch", "--with-colons", "--list-secret-keys"]).stdout.decode()
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    for n in SIZES:
        store = pass_store(n)
        run(["pass", "init", fingerprint], extra_env={"PASSWORD_STORE_DIR": store})
        run(["pass", "insert", "-m", ENTRY], stdin=MEASURED_SECRET.encode(), extra_env={"PASSWORD_STORE_DIR": store})
        filler = os.path.join(store, "filler.gpg")
        run(["pass", "insert", "-m", "filler"], stdin=secret_text().encode(), extra_env={"PASSWORD_STORE_DIR": store})
        data = open(filler, "rb").read()
        for i in range(n - 1):
            private_file(os.path.join(store, f"svc-{i:06d}.gpg"), data)
        os.unlink(filler)
    run(["pass", "show", ENTRY], extra_env={"PASSWORD_STORE_DIR": pass_store(SIZES[0])})   # warms gpg-agent

def pass_store(n):
    return os.path.join(work, f"pass-{n}")

# ---------------------------------------------------------------------------
# hyperfine

results = {}

def hf(name, commands, shell=False, ignore_failure=False, min_runs=10, max_runs=None, warmup=None,
       runs=None, prepare=None, extra_env=None):
    """One hyperfine run: every command of a table in one process, so the
    ratios between them are fair on a noisy machine."""
    if name not in TABLES and name.split(":")[0] not in TABLES:
        return None
    say(f"hyperfine: {name} ({len(commands)} commands)")
    args = ["hyperfine", "--style", "basic", "--export-json", f"{OUT}/{name}.json",
            "--export-markdown", f"{OUT}/{name}.md", "--warmup", str(warmup if warmup is not None else WARMUP)]
    if runs:
        args += ["--runs", str(runs)]
    else:
        top = int(max_runs or MAX_RUNS)
        args += ["--min-runs", str(min(min_runs, top)), "--max-runs", str(top)]
    if not shell:
        args.append("-N")
    if ignore_failure:
        args.append("-i")
    for label_, command in commands:
        args += ["-n", label_, command]
    if prepare:
        for p in prepare:
            args += ["--prepare", p]
    result = run(args, extra_env=extra_env, check=False)
    open(f"{OUT}/{name}.txt", "wb").write(result.stdout + result.stderr)
    if result.returncode != 0:
        sys.stderr.write((result.stdout + result.stderr).decode(errors="replace")[-3000:])
        raise SystemExit(f"scripts/bench: hyperfine failed for {name}")
    table = {r["command"]: r for r in json.load(open(f"{OUT}/{name}.json"))["results"]}
    results[name] = table
    print(open(f"{OUT}/{name}.md").read(), flush=True)
    return table

def expect(substring, args, extra_env=None, status=(0,)):
    """Every timed command is run once first, and its output checked."""
    r = run(args, extra_env=extra_env, check=False)
    out = r.stdout.decode(errors="replace")
    if r.returncode not in status or substring not in out:
        sys.stderr.write(r.stderr.decode(errors="replace"))
        raise SystemExit(f"scripts/bench: unexpected output ({r.returncode}) from: {' '.join(args)}")

def ks(*args):
    return " ".join([KEYSEAL, *args])

def sqlite_lookup(n):
    # The same row keyseal reads for header, by the same primary-key index.
    # (hyperfine -N splits a command line as a POSIX shell would, like shlex.)
    return (f"sqlite3 -readonly {vault(n)} \"SELECT name, entry_id, kind, header_template, url, description, "
            "created_at, updated_at, expires_at, last_used_at, fingerprint, nonce, ciphertext, warn_within, revision, "
            f"max_age, ca_certificates, remote_id, remote_state FROM entries WHERE name = '{ENTRY}'\"")

def pass_cmd(n, *args):
    return f"env PASSWORD_STORE_DIR={pass_store(n)} pass {' '.join(args)}"

KEYFILE_ENV = None   # set in main: KEYSEAL_KEYFILE for the tables

def validate():
    say("checking every command's output once before timing")
    kf = {"KEYSEAL_KEYFILE": keyfile}
    header = f"Authorization: Bearer {MEASURED_SECRET}"
    for n in SIZES:
        v = vault(n)
        expect(header, [KEYSEAL, "header", "--vault", v, ENTRY])
        expect(header, [KEYSEAL, "header", "--vault", v, ENTRY, "--no-agent"], extra_env=kf)
        expect(MEASURED_SECRET, [KEYSEAL, "get", "--vault", v, ENTRY])
        expect(ENTRY, [KEYSEAL, "list", "--vault", v])
        expect('"name":"api-bench"', [KEYSEAL, "list", "--json", "--vault", v])
        expect("", [KEYSEAL, "check", "--vault", v], status=(0, 1, 2))
        expect(ENTRY, shlex.split(sqlite_lookup(n)))
        expect(MEASURED_SECRET, ["pass", "show", ENTRY], extra_env={"PASSWORD_STORE_DIR": pass_store(n)})
        expect(ENTRY, ["pass", "ls"], extra_env={"PASSWORD_STORE_DIR": pass_store(n)})
    expect(MEASURED_SECRET, ["age", "-d", "-i", f"{work}/age-key.txt", f"{work}/secret.age"])
    expect("hello", [HELLO])
    for n in SIZES:
        expect(ENTRY, [CFLOOR, vault(n), ENTRY])
    expect(header, [KEYSEAL, "header", "--vault", vault(SIZES[0]), ENTRY, "--no-agent"], extra_env=with_passphrase())

# ---------------------------------------------------------------------------
# The tables.

def table_floors():
    n = SIZES[0]
    hf("floors", [
        ("hello-world (Swift, static: process floor)", HELLO),
        ("sqlite3 primary-key lookup (storage floor)", sqlite_lookup(n)),
        ("C, static: exit at once", CFLOOR),
        ("C, static: SQLite open and the same lookup", f"{CFLOOR} {vault(n)} {ENTRY}"),
        ("keyseal header (agent)", ks("header", "--vault", vault(n), ENTRY)),
        ("keyseal header (key file)", ks("header", "--vault", vault(n), ENTRY, "--no-agent")),
        ("keyseal get (agent)", ks("get", "--vault", vault(n), ENTRY)),
        ("keyseal --version (argument parser)", ks("--version")),
        ("age -d -i key.txt", f"age -d -i {work}/age-key.txt {work}/secret.age"),
        ("pass show (warm gpg-agent)", pass_cmd(n, "show", ENTRY)),
    ], min_runs=30, extra_env={"KEYSEAL_KEYFILE": keyfile})

def table_header_scale():
    commands = []
    for how, extra in (("agent", ()), ("key file", ("--no-agent",))):
        for n in SIZES:
            commands.append((f"keyseal header ({how}), {label(n)}", ks("header", "--vault", vault(n), ENTRY, *extra)))
    for n in SIZES:
        commands.append((f"sqlite3 lookup, {label(n)}", sqlite_lookup(n)))
    for n in SIZES:
        commands.append((f"C SQLite lookup, {label(n)}", f"{CFLOOR} {vault(n)} {ENTRY}"))
    for n in SIZES:
        commands.append((f"pass show, {label(n)}", pass_cmd(n, "show", ENTRY)))
    hf("header-scale", commands, min_runs=30, extra_env={"KEYSEAL_KEYFILE": keyfile})

def table_read_scale():
    commands = []
    for name, args in (("get (agent)", ("get",)), ("list", ("list",)), ("list --json", ("list", "--json")),
                       ("check", ("check",)), ("check --json", ("check", "--json"))):
        for n in SIZES:
            command = ks(args[0], *args[1:], "--vault", vault(n)) + (f" {ENTRY}" if args[0] == "get" else "")
            commands.append((f"keyseal {name}, {label(n)}", command))
    for n in SIZES:
        commands.append((f"pass ls, {label(n)}", pass_cmd(n, "ls")))
    # check exits 1 or 2 when entries need attention, as these vaults' do.
    hf("read-scale", commands, ignore_failure=True, min_runs=5, warmup=3)

def table_write_scale():
    secret2 = f"{work}/secret2"
    commands, prepare = [], []
    for n in SIZES:
        commands.append((f"keyseal add (agent), {label(n)}", f"{KEYSEAL} add --vault {vault(n)} bench-new <{secret2}"))
        prepare.append(f"{KEYSEAL} rm --vault {vault(n)} bench-new --yes >/dev/null 2>&1 || true")
    for n in SIZES:
        commands.append((f"keyseal rotate (agent), {label(n)}", f"{KEYSEAL} rotate --vault {vault(n)} {ENTRY} <{secret2}"))
        prepare.append("true")
    for n in (SIZES[0], SIZES[-1]):
        commands.append((f"pass insert -m -f, {label(n)}",
                         f"PASSWORD_STORE_DIR={pass_store(n)} pass insert -m -f bench-new <{secret2} >/dev/null"))
        prepare.append("true")
    hf("write-scale", commands, shell=True, min_runs=10, max_runs=100, warmup=3, prepare=prepare)

def table_builds():
    """The three ways to build keyseal (docs/PERFORMANCE.md, "Which build to
    ship"), with age -d in the same table; only with BENCH_BUILDS=1."""
    if "builds" not in TABLES:
        return
    n = SIZES[0]
    commands = []
    for what, binary in (("dynamic", os.environ["BENCH_DYNAMIC"]), ("pie", os.environ["BENCH_PIE"]), ("static", KEYSEAL)):
        commands += [(f"{what}: keyseal --version", f"{binary} --version"),
                     (f"{what}: keyseal header (agent)", f"{binary} header --vault {vault(n)} {ENTRY}"),
                     (f"{what}: keyseal header (key file)", f"{binary} header --vault {vault(n)} {ENTRY} --no-agent")]
    commands.append(("age -d -i key.txt", f"age -d -i {work}/age-key.txt {work}/secret.age"))
    hf("builds", commands, min_runs=30, extra_env={"KEYSEAL_KEYFILE": keyfile})

def keepass_xml(n, path):
    with open(path, "w") as f:
        f.write('<?xml version="1.0" encoding="utf-8" standalone="yes"?>\n<KeePassFile><Meta><Generator>keyseal-bench'
                '</Generator></Meta><Root><Group><UUID>%s</UUID><Name>Root</Name>\n' % base64.b64encode(uuid.uuid4().bytes).decode())
        for i in range(n):
            title, secret = (ENTRY, MEASURED_SECRET) if i == n // 2 else (f"svc-{i:06d}", secret_text())
            f.write('<Entry><UUID>%s</UUID><String><Key>Title</Key><Value>%s</Value></String><String><Key>Password</Key>'
                    '<Value ProtectInMemory="True">%s</Value></String></Entry>\n' % (base64.b64encode(uuid.uuid4().bytes).decode(), title, secret))
        f.write('</Group></Root></KeePassFile>\n')

def table_keepassxc(kdf_ms):
    """KeePassXC derives its key on every call: once with the decryption time
    set to what keyseal's default preset takes to unlock with a passphrase,
    once at the lowest its CLI accepts (100 ms), to show its floor."""
    if "keepassxc" not in TABLES:
        return
    kp_key = f"{work}/keepass.key"
    private_file(kp_key, os.urandom(32))
    low = 100
    settings = [("same KDF time", kdf_ms), ("lowest KDF, 100 ms", low)]
    commands = [("keepassxc-cli --version (process floor)", "keepassxc-cli --version")]
    for n in SIZES:
        xml = f"{work}/keepass-{n}.xml"
        keepass_xml(n, xml)
        for what, ms in settings:
            db = f"{work}/keepass-{n}-{ms}.kdbx"
            started = time.monotonic()
            run(["keepassxc-cli", "import", "-q", "--set-key-file", kp_key, "-t", str(ms), xml, db], stdin=b"")
            say(f"KeePassXC database of {n} entries ({what}, {ms} ms) made in {time.monotonic() - started:.1f} s")
            expect(MEASURED_SECRET, ["keepassxc-cli", "show", "-q", "--no-password", "-k", kp_key, "-a", "password", db, ENTRY])
            commands.append((f"keepassxc-cli show ({what}), {label(n)}",
                             f"keepassxc-cli show -q --no-password -k {kp_key} -a password {db} {ENTRY}"))
            commands.append((f"keepassxc-cli ls ({what}), {label(n)}", f"keepassxc-cli ls -q --no-password -k {kp_key} {db}"))
        os.unlink(xml)
    hf("keepassxc", commands, min_runs=3, max_runs=20, warmup=0)

def table_import():
    commands, prepare = [], []
    base = os.path.join(work, "base.db")
    for n in IMPORT_SIZES:
        export = os.path.join(work, f"import-{n}.json")
        if not os.path.exists(export):
            export_json(n, export)
        target = os.path.join(work, f"import-{n}.db")
        # Unlocked in the process (the key file), and through the agent,
        # which seals and then opens each entry over its socket.
        commands.append((f"keyseal import --apply --no-agent (key file), {label(n)} entries",
                         ks("import", "--vault", target, "--apply", "--no-agent", export)))
        prepare.append(f"sh -c 'cp {base} {target} && chmod 600 {target}'")
        commands.append((f"keyseal import --apply (agent), {label(n)} entries",
                         ks("import", "--vault", target, "--apply", export)))
        prepare.append(f"sh -c 'cp {base} {target} && chmod 600 {target}'")
    hf("import", commands, runs=int(os.environ.get("BENCH_IMPORT_RUNS", "3")), warmup=0, prepare=prepare,
       extra_env={"KEYSEAL_KEYFILE": keyfile})

# ---------------------------------------------------------------------------
# Peak memory (GNU time's maximum resident set size), one run per command.

def peak(args, extra_env=None, stdin=None, ok=(0,)):
    r = run(["/usr/bin/time", "-f", "%M %e", *args], stdin=stdin, extra_env=extra_env, check=False)
    if r.returncode not in ok:
        raise SystemExit(f"scripts/bench: failed ({r.returncode}) under /usr/bin/time: {' '.join(args)}")
    kib, seconds = r.stderr.decode().strip().splitlines()[-1].split()
    return int(kib), float(seconds)

def table_memory():
    if "memory" not in TABLES:
        return
    say("peak memory per command (/usr/bin/time)")
    kf = {"KEYSEAL_KEYFILE": keyfile}
    secret2 = open(f"{work}/secret2", "rb").read()
    rows = []
    for n in SIZES:
        v = vault(n)
        row = {"entries": n}
        row["header (agent)"] = peak([KEYSEAL, "header", "--vault", v, ENTRY])[0]
        row["header (key file)"] = peak([KEYSEAL, "header", "--vault", v, ENTRY, "--no-agent"], extra_env=kf)[0]
        row["get (agent)"] = peak([KEYSEAL, "get", "--vault", v, ENTRY])[0]
        row["list"] = peak([KEYSEAL, "list", "--vault", v])[0]
        row["list --json"] = peak([KEYSEAL, "list", "--json", "--vault", v])[0]
        row["check"] = peak([KEYSEAL, "check", "--vault", v], ok=(0, 1, 2))[0]
        run([KEYSEAL, "rm", "--vault", v, "bench-mem", "--yes"], check=False)
        row["add (agent)"] = peak([KEYSEAL, "add", "--vault", v, "bench-mem"], stdin=secret2)[0]
        row["rotate (agent)"] = peak([KEYSEAL, "rotate", "--vault", v, "bench-mem"], stdin=secret2)[0]
        row["sqlite3 lookup"] = peak(shlex.split(sqlite_lookup(n)))[0]
        row["pass show"] = peak(["pass", "show", ENTRY], extra_env={"PASSWORD_STORE_DIR": pass_store(n)})[0]
        row["pass ls"] = peak(["pass", "ls"], extra_env={"PASSWORD_STORE_DIR": pass_store(n)})[0]
        rows.append(row)
    base = os.path.join(work, "base.db")
    imports = []
    for n in IMPORT_SIZES:
        export = os.path.join(work, f"import-{n}.json")
        if not os.path.exists(export):
            export_json(n, export)
        target = os.path.join(work, f"memory-import-{n}.db")
        shutil.copyfile(base, target)
        os.chmod(target, 0o600)
        kib, seconds = peak([KEYSEAL, "import", "--vault", target, "--apply", "--no-agent", export], extra_env=kf)
        imports.append({"entries": n, "peak_kib": kib, "seconds": seconds, "json_bytes": os.path.getsize(export)})
        os.unlink(target)
    rows_hello = peak([HELLO])[0]
    rows_age = peak(["age", "-d", "-i", f"{work}/age-key.txt", f"{work}/secret.age"])[0]
    json.dump({"commands": rows, "imports": imports, "hello": rows_hello, "age": rows_age},
              open(f"{OUT}/memory.json", "w"), indent=1)
    columns = [k for k in rows[0] if k != "entries"]
    lines = ["| peak RSS (MiB) | " + " | ".join(label(r["entries"]) for r in rows) + " |",
             "|:---|" + "---:|" * len(rows)]
    for c in columns:
        lines.append(f"| {c} | " + " | ".join(f"{r[c] / 1024:.1f}" for r in rows) + " |")
    lines.append(f"| hello-world (floor) | {rows_hello / 1024:.1f} |" + " |" * (len(rows) - 1))
    lines.append(f"| age -d | {rows_age / 1024:.1f} |" + " |" * (len(rows) - 1))
    lines += ["", "| import --apply --no-agent (key file) | JSON size | time (s) | peak RSS (MiB) |", "|:---|---:|---:|---:|"]
    for i in imports:
        lines.append(f"| {label(i['entries'])} entries | {i['json_bytes'] / 2**20:.1f} MiB | {i['seconds']:.2f} | {i['peak_kib'] / 1024:.1f} |")
    open(f"{OUT}/memory.md", "w").write("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)

def table_sizes():
    if "sizes" not in TABLES:
        return
    lines = ["| entries | vault file | bytes per entry | pass store (du) | KeePassXC file |", "|---:|---:|---:|---:|---:|"]
    data = []
    for n in SIZES:
        size = os.path.getsize(vault(n))
        du = int(run(["du", "-sb", pass_store(n)]).stdout.split()[0])
        kdbx = f"{work}/keepass-{n}-100.kdbx"
        kp = os.path.getsize(kdbx) if os.path.exists(kdbx) else None
        data.append({"entries": n, "vault_bytes": size, "pass_bytes": du, "keepass_bytes": kp})
        lines.append(f"| {n:,} | {size:,} | {size / n:,.0f} | {du:,} | {kp:,} |" if kp else
                     f"| {n:,} | {size:,} | {size / n:,.0f} | {du:,} | |")
    json.dump(data, open(f"{OUT}/sizes.json", "w"), indent=1)
    open(f"{OUT}/sizes.md", "w").write("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)

def table_kdf():
    """Each Argon2id preset: the time and peak memory of `keyseal init`, which
    derives the key once (the same derivation as every passphrase unlock)."""
    if "kdf" not in TABLES:
        return
    say("KDF presets (keyseal init, 3 runs each)")
    presets = [["interactive"], ["moderate"], ["sensitive"]]
    helptext = run([KEYSEAL, "init", "--help"]).stdout.decode()
    if "calibrate" in helptext:
        presets += [["calibrate"], ["calibrate", "--kdf-time", "2s"]]
    lines = ["| --kdf | time (s), median of 3 | peak RSS (MiB) | what keyseal chose |", "|:---|---:|---:|:---|"]
    data = []
    for preset in presets:
        times, peaks, said = [], [], ""
        for i in range(3):
            target = f"{work}/kdf-{i}.db"
            r = run(["/usr/bin/time", "-f", "%M %e", KEYSEAL, "init", "--vault", target, "--kdf", *preset],
                    extra_env=with_passphrase())
            err = r.stderr.decode().strip().splitlines()
            kib, seconds = err[-1].split()
            times.append(float(seconds))
            peaks.append(int(kib))
            said = next((line for line in err if "created a vault" in line), "")
            os.unlink(target)
        chosen = re.search(r"\((Argon2id[^)]*)\)", said)
        data.append({"kdf": " ".join(preset), "seconds": times, "peak_kib": peaks, "said": said})
        lines.append(f"| {' '.join(preset)} | {statistics.median(times):.2f} | {max(peaks) / 1024:.0f} | "
                     f"{chosen.group(1) if chosen else ''} |")
    json.dump(data, open(f"{OUT}/kdf.json", "w"), indent=1)
    open(f"{OUT}/kdf.md", "w").write("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)

def table_profile():
    """Where header's time goes beyond the process floor: callgrind's
    instruction counts (exact, unlike times on this machine), inclusive, for
    the parts of one `keyseal header` through the agent."""
    if "profile" not in TABLES or not shutil.which("valgrind"):
        return
    say("profile: valgrind --tool=callgrind")
    parts = [
        ("whole process", r"PROGRAM TOTALS"),
        ("Vault.open (SQLite open, checks, one read transaction)", r"Storage5VaultC4open2atACSS_tAA0A5ErrorOYKFZ \["),
        ("  of which SQLite reads and parses the schema", r"\?\?\?:sqlite3InitOne "),
        ("the entry's row (Vault.sealedEntry)", r"Storage5VaultC11sealedEntry5namedAA06SealedD0VSS_tAA0A5ErrorOYKF \["),
        ("finding and asking the agent", r"keyseal15AgentConnectionO4find"),
        ("opening the entry (agent round trip, AEAD)", r"Storage13UnlockedVaultC4openyAA11OpenedEntryVAA06SealedF0VAA0A5ErrorOYKF \["),
        ("closing the vault (sqlite3_close)", r"\?\?\?:sqlite3_close_v2 "),
        ("libsodium's start (sodium_init)", r"\?\?\?:sodium_init "),
    ]
    lines = ["| part | instructions | share |", "|:---|---:|---:|"]
    totals = {}
    for what, args, extra in (("hello-world", [HELLO], None),
                              ("keyseal header (agent), 1 entry", [KEYSEAL, "header", "--vault", vault(SIZES[0]), ENTRY], None),
                              (f"keyseal header (agent), {label(SIZES[-1])} entries", [KEYSEAL, "header", "--vault", vault(SIZES[-1]), ENTRY], None),
                              ("keyseal header (key file), 1 entry", [KEYSEAL, "header", "--vault", vault(SIZES[0]), ENTRY, "--no-agent"],
                               {"KEYSEAL_KEYFILE": keyfile})):
        out = f"{OUT}/callgrind.{re.sub('[^a-z0-9]+', '-', what.lower())}"
        run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *args], extra_env=extra)
        # From /: in the source tree, callgrind_annotate shortens the paths
        # and the names below no longer match.
        annotated = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", out], cwd="/",
                                   capture_output=True, check=True).stdout.decode()
        total = int(re.search(r"([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", annotated).group(1).replace(",", ""))
        totals[what] = total
        if what == "keyseal header (agent), 1 entry":
            for part, pattern in parts:
                m = re.search(r"^[ \t]*([\d,]+) \([ \t]*[\d.]+%\)[ \t]+(?![=<*])[^\n]*" + pattern, annotated, re.M)
                if m:
                    count = int(m.group(1).replace(",", ""))
                    lines.append(f"| {part} | {count:,} | {count / total:.0%} |")
    lines += ["", "| process | instructions | against hello-world |", "|:---|---:|---:|"]
    for what, total in totals.items():
        lines.append(f"| {what} | {total:,} | {total / totals['hello-world']:.1f}x |")
    open(f"{OUT}/profile.md", "w").write("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)
    # perf stat: page faults and task clock, which instructions do not show.
    stats = []
    for what, args, extra in (("hello-world", [HELLO], None),
                              ("keyseal header (agent)", [KEYSEAL, "header", "--vault", vault(SIZES[0]), ENTRY], None),
                              ("keyseal header (key file)", [KEYSEAL, "header", "--vault", vault(SIZES[0]), ENTRY, "--no-agent"],
                               {"KEYSEAL_KEYFILE": keyfile})):
        if not shutil.which("perf"):
            break
        r = run(["perf", "stat", "-r", "200", "-x,", "-e", "task-clock,page-faults,context-switches", *args],
                extra_env=extra, check=False)
        fields = {}
        for line in r.stderr.decode().splitlines():
            parts_ = line.split(",")
            if len(parts_) > 3 and parts_[0] and parts_[0][0].isdigit():
                fields[parts_[2]] = float(parts_[0])
        stats.append((what, fields))
    if stats:
        extra_lines = ["", "| process (perf stat, 200 runs) | task clock (ms) | page faults | context switches |",
                       "|:---|---:|---:|---:|"]
        for what, f in stats:
            extra_lines.append(f"| {what} | {f.get('task-clock', 0):.2f} | {f.get('page-faults', 0):.0f} | {f.get('context-switches', 0):.1f} |")
        open(f"{OUT}/profile.md", "a").write("\n".join(extra_lines) + "\n")
        print("\n".join(extra_lines), flush=True)

# ---------------------------------------------------------------------------
# Summary and plot.

def mean_ms(table, command):
    return results[table][command]["mean"] * 1000

def summary(load_before):
    rows = []
    def target(what, value, goal, ok, unit=""):
        rows.append(f"| {what} | {value}{unit} | {goal} | {'met' if ok else 'MISSED'} |")
    # Judged on medians: one slow outlier on this shared machine moves a
    # mean by more than the difference being measured.
    for table in results.values():
        for r in table.values():
            r["mean_"], r["mean"] = r["mean"], r["median"]
    big = label(SIZES[-1])
    if "floors" in results:
        f = results["floors"]
        age = f["age -d -i key.txt"]["mean"]
        pass_ = f["pass show (warm gpg-agent)"]["mean"]
        hello = f["hello-world (Swift, static: process floor)"]["mean"]
        for how in ("agent", "key file"):
            h = f[f"keyseal header ({how})"]["mean"]
            target(f"header ({how}) / age -d", f"{h / age:.2f}", "≤ 1.00", h <= age)
            target(f"pass show / header ({how})", f"{pass_ / h:.1f}", "≥ 4", pass_ / h >= 4)
            target(f"header ({how}) / hello-world", f"{h / hello:.2f}", "≤ 1.50", h / hello <= 1.5)
    if "header-scale" in results:
        h = results["header-scale"]
        for how in ("agent", "key file"):
            r = h[f"keyseal header ({how}), {big}"]["mean"] / h[f"keyseal header ({how}), {label(SIZES[0])}"]["mean"]
            target(f"header ({how}): {big} / {label(SIZES[0])} entries", f"{r:.2f}", "≤ 1.20", r <= 1.2)
    if "read-scale" in results:
        for cmd in ("list", "check"):
            ms = mean_ms("read-scale", f"keyseal {cmd}, {big}")
            target(f"{cmd} at {big} entries", f"{ms:.0f}", "< 300 ms", ms < 300, " ms")
    if "write-scale" in results:
        for n in SIZES:
            ms = mean_ms("write-scale", f"keyseal add (agent), {label(n)}")
            target(f"add (agent) at {label(n)} entries", f"{ms:.1f}", "< 30 ms", ms < 30, " ms")
    if "import" in results:
        for n in IMPORT_SIZES:
            for how in ("--no-agent (key file)", "(agent)"):
                s = results["import"][f"keyseal import --apply {how}, {label(n)} entries"]["mean"]
                target(f"import {how} of {label(n)} entries", f"{s:.2f}", "< 10 s", s < 10, " s")
    if os.path.exists(f"{OUT}/memory.json"):
        imports = json.load(open(f"{OUT}/memory.json"))["imports"]
        if len(imports) >= 2:
            a, b = imports[0], imports[-1]
            target(f"import peak memory, {label(b['entries'])} / {label(a['entries'])} entries",
                   f"{b['peak_kib'] / a['peak_kib']:.2f}", "bounded (about 1)", b["peak_kib"] / a["peak_kib"] < 1.5)
    load_after = open("/proc/loadavg").read().split()[:3]
    text = [f"Load average before: {' '.join(load_before)}; after: {' '.join(load_after)}. "
            f"Sizes: {', '.join(map(str, SIZES))} entries.", "",
            "| target | measured (medians) | goal | |", "|:---|---:|:---|:---|", *rows]
    noisy = [(t, c) for t, table in results.items() for c, r in table.items() if r["stddev"] > 0.25 * r["mean_"]]
    if noisy:
        text += ["", f"Rows with a standard deviation above 25% of the mean: {len(noisy)} "
                 f"({'; '.join(f'{t}: {c}' for t, c in noisy[:8])}{' ...' if len(noisy) > 8 else ''})."]
    open(f"{OUT}/summary.md", "w").write("\n".join(text) + "\n")
    print("\n".join(text), flush=True)

def plot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        say("matplotlib is missing: no plot")
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5))
    def series(ax, table, name, style, prefix=None):
        if table not in results:
            return
        xs, ys = [], []
        for n in SIZES:
            r = results[table].get(f"{prefix or name}, {label(n)}")
            if r:
                xs.append(n)
                ys.append(r["mean"] * 1000)
        if xs:
            ax.plot(xs, ys, style, label=name, markersize=4)
    for name in ("keyseal header (agent)", "keyseal header (key file)", "sqlite3 lookup", "C SQLite lookup", "pass show"):
        series(left, "header-scale", name, "o-" if name.startswith("keyseal") else "s--")
    series(left, "read-scale", "keyseal get (agent)", "o-")
    for name, prefix in (("keepassxc-cli show (lowest KDF)", "keepassxc-cli show (lowest KDF, 100 ms)"),):
        series(left, "keepassxc", name, "s--", prefix)
    if "floors" in results:
        for name, style in (("age -d -i key.txt", ":"), ("hello-world (Swift, static: process floor)", "-.")):
            left.axhline(results["floors"][name]["mean"] * 1000, linestyle=style, color="grey", linewidth=1)
            left.annotate(name.split(" (")[0], (SIZES[0], results["floors"][name]["mean"] * 1000), fontsize=7,
                          xytext=(2, 2), textcoords="offset points", color="grey")
    left.set_title("one secret: time per call")
    for name in ("keyseal list", "keyseal list --json", "keyseal check", "pass ls"):
        series(right, "read-scale", name, "o-" if name.startswith("keyseal") else "s--")
    series(right, "write-scale", "keyseal add (agent)", "^-")
    series(right, "write-scale", "keyseal rotate (agent)", "v-")
    series(right, "keepassxc", "keepassxc-cli ls (lowest KDF)", "s--", "keepassxc-cli ls (lowest KDF, 100 ms)")
    right.axhline(300, linestyle=":", color="red", linewidth=1)
    right.annotate("300 ms target", (SIZES[0], 300), fontsize=7, xytext=(2, 2), textcoords="offset points", color="red")
    right.set_title("whole vault, and writes")
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("entries in the vault (store, database)")
        ax.set_ylabel("median time (ms), hyperfine")
        ax.grid(True, which="both", linewidth=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("keyseal and its peers against vault size (scripts/bench)")
    fig.tight_layout()
    fig.savefig(f"{OUT}/performance.png", dpi=110)
    say(f"plot: {OUT}/performance.png")

def machine():
    """The machine and the versions, for the report."""
    def out(args):
        try:
            return subprocess.run(args, capture_output=True, env=env).stdout.decode().strip()
        except OSError:
            return "?"
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    os_release = dict(l.rstrip().split("=", 1) for l in open("/etc/os-release") if "=" in l)
    rows = [
        ("CPUs", f"{os.cpu_count()} ({cpu})"),
        ("Memory", f"{mem / 2**20:.0f} GiB"),
        ("OS", f"{os_release.get('PRETTY_NAME', '?').strip(chr(34))}, kernel {os.uname().release}"),
        ("Swift", out(["swift", "--version"]).splitlines()[0] if out(["swift", "--version"]) else "?"),
        ("keyseal", out([KEYSEAL, "--version"]) + " (scripts/build: fully static)"),
        ("libsodium, SQLite", out(["dpkg-query", "-W", "-f=${Version}", "libsodium-dev"]) + ", "
         + out(["dpkg-query", "-W", "-f=${Version}", "libsqlite3-dev"])),
        ("peers", ", ".join(f"{name} {out(args).split()[-1] if out(args) else '?'}" for name, args in (
            ("age", ["age", "--version"]), ("pass", ["dpkg-query", "-W", "-f=${Version}", "pass"]),
            ("GnuPG", ["dpkg-query", "-W", "-f=${Version}", "gnupg"]), ("KeePassXC", ["keepassxc-cli", "--version"]),
            ("sqlite3", ["dpkg-query", "-W", "-f=${Version}", "sqlite3"]), ("hyperfine", ["hyperfine", "--version"])))),
    ]
    text = "| | |\n|:---|:---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows) + "\n"
    open(f"{OUT}/machine.md", "w").write(text)
    print(text, flush=True)

def main():
    os.makedirs(OUT, exist_ok=True)
    load_before = open("/proc/loadavg").read().split()[:3]
    try:
        machine()
        make_world()
        validate()
        table_floors()
        table_header_scale()
        table_read_scale()
        table_write_scale()
        table_builds()
        # What keyseal's default preset takes to unlock with a passphrase,
        # for KeePassXC's decryption time.
        kdf_ms = 0
        if "keepassxc" in TABLES:
            t = hf("keepassxc:kdf-preset-unlock", [("keyseal header (passphrase, default KDF preset)",
                                          ks("header", "--vault", vault(SIZES[0]), ENTRY, "--no-agent"))],
                   runs=5, warmup=1, extra_env=with_passphrase())
            kdf_ms = max(100, min(5000, round(t["keyseal header (passphrase, default KDF preset)"]["mean"] * 1000)))
        table_keepassxc(kdf_ms)
        table_import()
        table_memory()
        table_sizes()
        table_kdf()
        table_profile()
        summary(load_before)
        plot()
    finally:
        cleanup()

if __name__ == "__main__":
    main()
