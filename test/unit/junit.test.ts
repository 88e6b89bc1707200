import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tapToJunit } from '../../src/module/junit.js';
import { errorAnnotation, ghEscape, inGithubActions } from '../../src/cli/annotations.js';

const opts = { suite: 'm5dev module test m5', classname: 'm5dev.module.m5', timestamp: '2026-12-04T23:00:00', seconds: 1.5 };

describe('JUnit XML from a module test\'s TAP', () => {
  it('one testcase per TAP line, failures with their line, skips, and the guest output as system-out', () => {
    const tap = '1..4\nok 1 - opens /dev/gem5_bridge\nnot ok 2 - maps the range\nok 3 - sum # SKIP no host\nnot ok 4 - todo thing # TODO later\nsome <guest> output & "quotes" ]]> here\n';
    const xml = tapToJunit(tap, opts);
    expect(xml).toMatch(/^<\?xml version="1\.0" encoding="UTF-8"\?>\n<testsuites name="m5dev" tests="4" failures="1" errors="0" skipped="1" time="1\.500">/);
    expect(xml).toContain('<testsuite name="m5dev module test m5" tests="4" failures="1" errors="0" skipped="1" time="1.500" timestamp="2026-12-04T23:00:00">');
    expect(xml).toContain('<testcase name="opens /dev/gem5_bridge" classname="m5dev.module.m5"/>');
    expect(xml).toContain('<testcase name="maps the range" classname="m5dev.module.m5">\n      <failure message="not ok 2 - maps the range" type="TAP"><![CDATA[not ok 2 - maps the range]]></failure>');
    expect(xml).toContain('<testcase name="sum" classname="m5dev.module.m5">\n      <skipped message="no host"/>');
    expect(xml).toContain('<testcase name="todo thing" classname="m5dev.module.m5"/>'); // a TODO failure is not a failure
    // ]]> inside the output is split so the CDATA section stays whole.
    expect(xml).toContain('some <guest> output & "quotes" ]]]]><![CDATA[> here');
  });

  it('a plan not met, no plan, and a bail-out are failures of their own; control characters never reach the XML', () => {
    expect(tapToJunit('1..3\nok 1 - a\n', opts)).toMatch(/<testcase name="TAP plan"[^>]*>\n\s*<failure message="planned 3 tests, ran 1"/);
    expect(tapToJunit('ok 1 - a\n', opts)).toMatch(/<failure message="the test program printed no plan \(1\.\.N\)"/);
    const bailed = tapToJunit('1..1\nok 1 - a\nBail out! device gone\n', opts);
    expect(bailed).toMatch(/<testcase name="bail out"[^>]*>\n\s*<failure message="Bail out! device gone"/);
    expect(bailed).toMatch(/failures="1"/);
    const ctl = tapToJunit('1..1\nok 1 - a\u0007b\n\u001b[31mred\u0000\n', opts);
    // eslint-disable-next-line no-control-regex
    expect(ctl).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/);
    expect(ctl).toContain('name="a\ufffdb"');
  });

  it('is well-formed XML (libxml2\'s xmllint: make setup-tests installs it)', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'm5dev-junit-')), 'r.xml');
    writeFileSync(file, tapToJunit('1..2\nok 1 - a "b" <c>\nnot ok 2 - d & e\n]]>\u0001\n', opts));
    execFileSync('xmllint', ['--noout', file]);
  });
});

describe('GitHub Actions annotations', () => {
  it('escape what the runner would read as the end of a property or line', () => {
    expect(ghEscape('50% done\nnext\r')).toBe('50%25 done%0Anext%0D');
    expect(ghEscape('a: b, c', true)).toBe('a%3A b%2C c');
    expect(errorAnnotation('m5dev (exit 12)', 'module build failed\nhint: fix it')).toBe('::error title=m5dev (exit 12)::module build failed%0Ahint: fix it\n');
    expect(inGithubActions({ GITHUB_ACTIONS: 'true' })).toBe(true);
    expect(inGithubActions({ CI: 'true' })).toBe(false);
  });
});
