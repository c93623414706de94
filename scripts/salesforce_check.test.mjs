// The offline Salesforce check fails on what an admin's deploy would fail on: each test runs
// scripts/salesforce_check.mjs on a copy of salesforce/ with one file broken and asserts the exit
// status and the message naming the file. Run by `make test` (node --test), after the check itself.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const checker = join(repo, "scripts", "salesforce_check.mjs");
const main = "force-app/main/default";

/** A copy of salesforce/ with `change(dir)` applied, checked; the copy is removed afterwards. */
function checkCopy(change) {
  const dir = mkdtempSync(join(tmpdir(), "sfvapi-sf-check-"));
  try {
    cpSync(join(repo, "salesforce"), dir, { recursive: true });
    change(dir);
    const run = spawnSync(process.execPath, [checker, dir], { encoding: "utf8" });
    return { status: run.status, out: run.stdout + run.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function edit(dir, file, fn) {
  const p = join(dir, file);
  writeFileSync(p, fn(readFileSync(p, "utf8")));
}

test("the shipped project passes", () => {
  const r = checkCopy(() => {});
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /salesforce check: ok: .*ApexClass.*CustomField.*EventRelayConfig.*3 Apex files parse/);
});

test("a malformed XML file fails, naming the file and line", () => {
  const file = `${main}/objects/Contact/fields/Voice_Consent__c.field-meta.xml`;
  const r = checkCopy((d) => edit(d, file, (t) => t.replace("</label>", "</labl>")));
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /Voice_Consent__c\.field-meta\.xml:\d+:\d+: malformed XML: .*labl/);
});

test("a metadata file that names no doc fails", () => {
  const file = `${main}/flows/Sfvapi_Call_On_High_Priority_Case.flow-meta.xml`;
  const r = checkCopy((d) => edit(d, file, (t) => t.replace(/<!-- Follows:[^\n]*-->/, "")));
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /Sfvapi_Call_On_High_Priority_Case\.flow-meta\.xml: names no Salesforce doc/);
});

test("a file of an unknown metadata type fails", () => {
  const r = checkCopy((d) => {
    mkdirSync(join(d, main, "callPolicies"), { recursive: true });
    writeFileSync(
      join(d, main, "callPolicies", "Quiet.callPolicy-meta.xml"),
      '<?xml version="1.0" encoding="UTF-8"?>\n<CallPolicy xmlns="http://soap.sforce.com/2006/04/metadata">\n    <!-- Follows: https://example.invalid -->\n</CallPolicy>\n',
    );
  });
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /Quiet\.callPolicy-meta\.xml: unknown metadata type/);
});

test("an Apex syntax error fails, naming the file, line and token", () => {
  const file = `${main}/classes/SfvapiEventSender.cls`;
  const r = checkCopy((d) => edit(d, file, (t) => t.replace("String ts = String.valueOf(timestampSeconds);", "String ts = String.valueOf(timestampSeconds)")));
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /SfvapiEventSender\.cls:\d+:\d+: Apex syntax error: /);
});

test("an Apex trigger is parsed too", () => {
  const r = checkCopy((d) => {
    mkdirSync(join(d, main, "triggers"), { recursive: true });
    writeFileSync(join(d, main, "triggers", "CaseCall.trigger"), "trigger CaseCall on Case (after update) {\n  for (Case c : Trigger.new { }\n}\n");
    writeFileSync(
      join(d, main, "triggers", "CaseCall.trigger-meta.xml"),
      '<?xml version="1.0" encoding="UTF-8"?>\n<ApexTrigger xmlns="http://soap.sforce.com/2006/04/metadata">\n    <!-- Follows: https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/meta_triggers.htm -->\n    <apiVersion>64.0</apiVersion>\n    <status>Active</status>\n</ApexTrigger>\n',
    );
  });
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /CaseCall\.trigger:2:\d+: Apex syntax error: Missing '\)'/);
});
