#!/usr/bin/env node
// Offline check of the Salesforce DX project (salesforce/), run by `make test` before clippy:
//
//   1. every .xml file is well-formed XML (fast-xml-parser's validator), and every metadata file
//      (*-meta.xml) names the Salesforce doc it follows (`<!-- Follows: https://… -->`);
//   2. every file of every package directory resolves to a metadata type Salesforce's own
//      library knows (@salesforce/source-deploy-retrieve, the code behind `sf project deploy`),
//      and the whole project converts from source format to Metadata API format;
//   3. every Apex class and trigger parses with Salesforce's Apex parser (jorje, as shipped in
//      prettier-plugin-apex's apex-ast-serializer, run on the JVM: no network, no native binary).
//
// Usage: node scripts/salesforce_check.mjs [project dir, default salesforce/]
// The tools come from scripts/salesforce/package.json, installed into .tools/salesforce by
// `make tools`; SFVAPI_SF_TOOLS=<dir with node_modules> points elsewhere.
// Exit status: 0 when all is well, 1 with one line per problem otherwise, 2 when the tools are missing.

import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const project = resolve(process.argv[2] ?? join(repo, "salesforce"));
const tools = resolve(process.env.SFVAPI_SF_TOOLS ?? join(repo, ".tools", "salesforce"));
const modules = join(tools, "node_modules");

if (!existsSync(join(modules, "@salesforce", "source-deploy-retrieve"))) {
  console.error(`salesforce check: the tools are not installed in ${tools} (run \`make tools\`)`);
  process.exit(2);
}
const require = createRequire(join(modules, "noop.js"));
const { XMLValidator } = require("fast-xml-parser");
const sdr = require("@salesforce/source-deploy-retrieve");

const problems = [];
const rel = (f) => relative(process.cwd(), f) || f;
const problem = (file, what) => problems.push(`${rel(file)}: ${what}`);

function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name === ".sf" || name === ".sfdx") continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

// --- the project file ------------------------------------------------------------------------
const projectFile = join(project, "sfdx-project.json");
let packageDirs = [];
try {
  const sfdx = JSON.parse(readFileSync(projectFile, "utf8"));
  if (!/^\d+\.0$/.test(sfdx.sourceApiVersion ?? "")) {
    problem(projectFile, `sourceApiVersion ${JSON.stringify(sfdx.sourceApiVersion)} is not an API version like "64.0"`);
  }
  packageDirs = (sfdx.packageDirectories ?? []).map((d) => join(project, d.path));
  if (packageDirs.length === 0) problem(projectFile, "no packageDirectories");
  for (const d of packageDirs) if (!existsSync(d)) problem(projectFile, `package directory ${rel(d)} does not exist`);
} catch (e) {
  problem(projectFile, `not a readable sfdx-project.json: ${e.message}`);
}

const files = existsSync(project) ? walk(project) : [];

// --- 1. XML ----------------------------------------------------------------------------------
for (const f of files.filter((f) => f.endsWith(".xml"))) {
  const text = readFileSync(f, "utf8");
  const v = XMLValidator.validate(text, { allowBooleanAttributes: false });
  if (v !== true) {
    problem(`${f}:${v.err.line}:${v.err.col}`, `malformed XML: ${v.err.msg}`);
    continue;
  }
  if (f.endsWith("-meta.xml") && !/<!--\s*Follows:\s*https:\/\/\S+/.test(text)) {
    problem(f, "names no Salesforce doc (add `<!-- Follows: https://… -->`)");
  }
}

// --- 2. metadata types and conversion ----------------------------------------------------------
let components = [];
const existingDirs = packageDirs.filter((d) => existsSync(d));
if (existingDirs.length > 0 && problems.length === 0) {
  const resolver = new sdr.MetadataResolver();
  for (const dir of existingDirs) {
    for (const f of walk(dir)) {
      try {
        // Resolving each file on its own names the file that has no type.
        const found = resolver.getComponentsFromPath(f);
        if (found.length === 0 && !f.endsWith("README.md")) {
          problem(f, "is not part of any metadata component (ignored by .forceignore?)");
        }
      } catch (e) {
        problem(f, `unknown metadata type: ${e.message.split("\n")[0]}`);
      }
    }
  }
  if (problems.length === 0) {
    try {
      const set = sdr.ComponentSet.fromSource({ fsPaths: existingDirs });
      components = set.getSourceComponents().toArray();
      const out = mkdtempSync(join(tmpdir(), "sfvapi-sf-mdapi-"));
      try {
        const result = await new sdr.MetadataConverter().convert(set, "metadata", {
          type: "directory",
          outputDirectory: out,
          genUniqueDir: false,
        });
        if (!existsSync(join(out, "package.xml"))) problem(project, "conversion wrote no package.xml");
        const converted = walk(out);
        for (const f of converted.filter((f) => f.endsWith(".xml") || /\.(object|field|flow|permissionset|eventRelay|namedCredential|externalCredential|platformEventChannel|platformEventChannelMember)$/.test(f))) {
          const v = XMLValidator.validate(readFileSync(f, "utf8"));
          if (v !== true) problem(f, `the converted file is malformed XML: ${v.err.msg}`);
        }
        if (!result || converted.length < 2) problem(project, "conversion produced nothing");
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    } catch (e) {
      problem(project, `does not convert to Metadata API format: ${e.message.split("\n")[0]}`);
    }
  }
}

// --- 3. Apex ---------------------------------------------------------------------------------
const serializer = join(modules, "prettier-plugin-apex", "vendor", "apex-ast-serializer", "bin", "apex-ast-serializer");
const apex = files.filter((f) => f.endsWith(".cls") || f.endsWith(".trigger"));
if (apex.length > 0 && !existsSync(serializer)) {
  problem(serializer, "missing: prettier-plugin-apex ships the Apex parser there");
}
for (const f of existsSync(serializer) ? apex : []) {
  const run = spawnSync(serializer, ["-l", f], { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  if (run.status !== 0) {
    problem(f, `the Apex parser did not run (exit ${run.status}, is Java 17 on PATH?): ${(run.stderr || "").trim().split("\n")[0]}`);
    continue;
  }
  let out;
  try {
    out = JSON.parse(run.stdout)["apex.jorje.semantic.compiler.parser.ParserOutput"];
  } catch (e) {
    problem(f, `the Apex parser's output is not JSON: ${e.message}`);
    continue;
  }
  for (const err of [...(out.parseErrors ?? []), ...(out.internalErrors ?? [])]) {
    const loc = err.error?.error?.loc ?? err.error?.loc ?? {};
    problem(`${f}:${loc.line ?? "?"}:${loc.column ?? "?"}`, `Apex syntax error: ${err.message ?? JSON.stringify(err)}`);
  }
}

if (problems.length > 0) {
  console.error(`salesforce check: ${problems.length} problem(s) in ${rel(project)}`);
  for (const p of problems) console.error(`  ${p}`);
  process.exit(1);
}
const types = [...new Set(components.map((c) => c.type.name))].sort();
console.log(
  `salesforce check: ok: ${files.filter((f) => f.endsWith(".xml")).length} XML files well-formed, ` +
    `${components.length} components of ${types.length} metadata types (${types.join(", ")}) convert to Metadata API format, ` +
    `${apex.length} Apex files parse`,
);
