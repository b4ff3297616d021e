#!/usr/bin/env node
// mutate.mjs: checks that every limit and refusal has a test that notices when it is gone.
//
// For each entry of tests/mutations.mjs (a check removed or made ineffective: one exact piece of
// source text replaced by another), it applies that one change to a copy of the tree, rebuilds
// incrementally, runs the suites the entry names, and reports whether any test failed (the
// removal was caught) or all passed (it SURVIVED: no test guards that check). A developer's
// tool, not part of CI: it rebuilds once per entry.
//
//   tests/mutate.sh                 every entry
//   tests/mutate.sh ID [ID...]      those entries only
//   tests/mutate.sh --list          the entries and what each removes
//
// Environment: MUTATE_DIR (the copy; default a new temporary folder, removed at the end unless
// MUTATE_KEEP=1), MUTATE_TIMEOUT (seconds per suite run, default 300).
// Exit status: 0 when every removal was caught, 1 when one survived or could not be applied.

import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { MUTATIONS } from "./mutations.mjs";

const TESTS = path.dirname(fileURLToPath(import.meta.url));
const TOP = path.resolve(TESTS, "..");
const TIMEOUT_S = Number(process.env.MUTATE_TIMEOUT || 300);

function log(s) {
  process.stdout.write(`${s}\n`);
}

function run(cmd, args, opts = {}) {
  return spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 256 << 20, ...opts });
}

// Copies the files git knows (committed or not, not ignored) into dir.
function copyTree(dir) {
  const files = execFileSync("git", ["-C", TOP, "ls-files", "-z", "-c", "-o", "--exclude-standard"], { encoding: "buffer", maxBuffer: 64 << 20 });
  const r = spawnSync("sh", ["-c", `cd "${TOP}" && xargs -0 tar cf - --no-recursion 2>/dev/null | (cd "${dir}" && tar xf -)`], { input: files });
  if (r.status !== 0) throw new Error("could not copy the tree");
  // tests/node_modules may itself be a symlink (a worktree sharing the main tree's), which git
  // does not ignore as it does the directory: then tar has copied it already.
  const nm = path.join(dir, "tests/node_modules");
  let copied = false;
  try {
    lstatSync(nm);
    copied = true;
  } catch {}
  if (!copied && existsSync(path.join(TESTS, "node_modules"))) symlinkSync(path.join(TESTS, "node_modules"), nm);
}

// Builds rtd, then the conformance server, which the js/ suites run (a check program: plain
// `make` would leave it as it was, unmutated). Two runs: in one, automake's recursive `all`
// and the conformance server would build librtd.a at the same time.
function build(dir) {
  for (const target of ["all", "tests/conformance-server"]) {
    const r = run("make", ["-C", path.join(dir, "build"), `-j${os.cpus().length}`, target], { timeout: 900_000 });
    if (r.status !== 0) return (r.stdout + r.stderr).split("\n").filter((l) => /error/i.test(l)).slice(0, 5).join("\n");
  }
  return null;
}

// Runs cmd under timeout(1), which stops the whole process group when the time is up: a
// mutant that loops forever must not outlive its run (make's test is its grandchild).
function runBounded(cmd, args, opts) {
  return run("timeout", ["-k", "10", String(TIMEOUT_S), cmd, ...args], { ...opts, timeout: (TIMEOUT_S + 30) * 1000 });
}

// Runs one suite spec; returns { ok, out }.
function runSuite(dir, suite) {
  const b = path.join(dir, "build");
  const env = { ...process.env, RTD_BIN: path.join(b, "rtd/rtd"), CONFORMANCE_SERVER: path.join(b, "tests/conformance-server") };
  if (suite.check) {
    const r = runBounded("make", ["-C", b, "check", `TESTS=${suite.check.join(" ")}`], { env });
    return { ok: r.status === 0, out: r.stdout + r.stderr };
  }
  if (suite.node) {
    const args = ["--test", "--test-reporter=dot", "--test-concurrency=2"];
    if (suite.grep) args.push(`--test-name-pattern=${suite.grep}`);
    args.push(...suite.node);
    const r = runBounded("node", args, { cwd: path.join(dir, "tests"), env });
    return { ok: r.status === 0, out: r.stdout + r.stderr };
  }
  throw new Error(`unknown suite ${JSON.stringify(suite)}`);
}

function suiteName(s) {
  if (s.check) return s.check.join(" ");
  return s.node.join(" ") + (s.grep ? ` /${s.grep}/` : "");
}

function main() {
  const argv = process.argv.slice(2);
  if (argv[0] === "--list") {
    for (const m of MUTATIONS) log(`${m.id.padEnd(28)} ${m.file}: ${m.why}`);
    return 0;
  }
  const ids = new Set(MUTATIONS.map((m) => m.id));
  for (const a of argv) if (!ids.has(a)) throw new Error(`no mutation named ${a} (see --list)`);
  const chosen = argv.length ? MUTATIONS.filter((m) => argv.includes(m.id)) : MUTATIONS;

  const dir = process.env.MUTATE_DIR || mkdtempSync(path.join(os.tmpdir(), "rtd-mutate-"));
  log(`# copy of the tree in ${dir}`);
  if (!existsSync(path.join(dir, "configure.ac"))) copyTree(dir);
  const env = { ...process.env, BUILD_DIR: path.join(dir, "build") };
  // without -Werror: a removed check may leave a helper unused
  const r = run(path.join(dir, "scripts/build.sh"), ["--disable-werror"], { env, timeout: 1_200_000 });
  const berr = r.status === 0 ? build(dir) : r.stderr.slice(-2000);
  if (berr) throw new Error(`the unmutated copy does not build:\n${berr}`);

  // The suites must pass unmutated, or a failure would prove nothing.
  const suites = new Map();
  for (const m of chosen) for (const s of m.tests) suites.set(suiteName(s), s);
  for (const [name, s] of suites) {
    const res = runSuite(dir, s);
    if (!res.ok) throw new Error(`the unmutated tree fails ${name}:\n${res.out.slice(-3000)}`);
    log(`# baseline passes: ${name}`);
  }

  const results = [];
  for (const m of chosen) {
    const file = path.join(dir, m.file);
    const orig = readFileSync(file, "utf8");
    const n = orig.split(m.from).length - 1;
    if (n !== 1) {
      results.push({ m, verdict: "NOT APPLIED", detail: `the text occurs ${n} times in ${m.file}` });
      log(`NOT APPLIED  ${m.id}: the text occurs ${n} times in ${m.file}`);
      continue;
    }
    writeFileSync(file, orig.replace(m.from, m.to));
    let verdict, detail = "";
    try {
      const err = build(dir);
      if (err) {
        verdict = "NOT APPLIED";
        detail = `does not build: ${err}`;
      } else {
        verdict = "SURVIVED";
        for (const s of m.tests) {
          const res = runSuite(dir, s);
          if (!res.ok) {
            verdict = "caught";
            detail = suiteName(s);
            break;
          }
        }
      }
    } finally {
      writeFileSync(file, orig);
    }
    results.push({ m, verdict, detail });
    log(`${verdict.padEnd(12)} ${m.id}${detail ? `: ${detail}` : ""}`);
  }
  const err = build(dir);
  if (err) log(`# the restored copy does not build: ${err}`);

  const bad = results.filter((x) => x.verdict !== "caught");
  const caught = results.length - bad.length;
  log(`\n${caught} of ${results.length} removals caught`);
  for (const x of bad) log(`  ${x.verdict}: ${x.m.id} (${x.m.file}: ${x.m.why})`);
  if (!process.env.MUTATE_DIR && !process.env.MUTATE_KEEP) rmSync(dir, { recursive: true, force: true });
  return bad.length ? 1 : 0;
}

try {
  process.exitCode = main();
} catch (e) {
  process.stderr.write(`mutate: ${e.message}\n`);
  process.exitCode = 2;
}
