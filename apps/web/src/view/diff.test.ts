import { describe, expect, it } from 'vitest';
import { parsePatch, splitRows } from './diff.js';

/** Made by `git diff --cached --binary -M` over an add, a binary change, an edit, a rename and a delete. */
const PATCH = `diff --git a/added.txt b/added.txt
new file mode 100644
index 0000000..8ba3a16
--- /dev/null
+++ b/added.txt
@@ -0,0 +1 @@
+n
diff --git a/bin.dat b/bin.dat
index bdc955b7b2e610ad5a72302b139a2e6cb325519a..350ed01038bfaa2fda2722ada23a75bdd971bd68 100644
GIT binary patch
literal 3
KcmZQzVg>*J3IGNG

literal 2
JcmZQz1ONa700IC2

diff --git a/f.txt b/f.txt
index de98044..f8f7a32 100644
--- a/f.txt
+++ b/f.txt
@@ -1,3 +1,4 @@
 a
-b
+B
 c
+d
\\ No newline at end of file
diff --git a/gone.txt b/gone.txt
deleted file mode 100644
index 7898192..0000000
--- a/gone.txt
+++ /dev/null
@@ -1 +0,0 @@
-a
diff --git a/old.txt b/new.txt
old mode 100644
new mode 100755
similarity index 100%
rename from old.txt
rename to new.txt
`;

describe('parsePatch', () => {
  const files = parsePatch(PATCH);

  it('lists every file with its status and counts', () => {
    expect(files.map((f) => [f.path, f.status, f.additions, f.deletions, f.binary])).toEqual([
      ['added.txt', 'added', 1, 0, false],
      ['bin.dat', 'modified', 0, 0, true],
      ['f.txt', 'modified', 2, 1, false],
      ['gone.txt', 'deleted', 0, 1, false],
      ['new.txt', 'renamed', 0, 0, false],
    ]);
  });

  it('marks binary files and shows no lines for them', () => {
    expect(files[1]).toMatchObject({ binary: true, hunks: [] });
  });

  it('keeps a rename and a mode change', () => {
    expect(files[4]).toMatchObject({
      oldPath: 'old.txt',
      modeChange: '100644 → 100755',
      hunks: [],
    });
    expect(files[2]!.oldPath).toBeNull();
  });

  it('numbers lines on both sides, without their prefix or the no-newline marker', () => {
    expect(files[2]!.hunks).toEqual([
      {
        header: '@@ -1,3 +1,4 @@',
        lines: [
          { type: 'context', oldNumber: 1, newNumber: 1, text: 'a' },
          { type: 'delete', oldNumber: 2, newNumber: null, text: 'b' },
          { type: 'insert', oldNumber: null, newNumber: 2, text: 'B' },
          { type: 'context', oldNumber: 3, newNumber: 3, text: 'c' },
          { type: 'insert', oldNumber: null, newNumber: 4, text: 'd' },
        ],
      },
    ]);
  });

  it('reads an empty patch as no files', () => {
    expect(parsePatch('')).toEqual([]);
    expect(parsePatch('\n')).toEqual([]);
  });

  it('keeps text that looks like markup as text', () => {
    const [file] = parsePatch(
      'diff --git a/x.html b/x.html\n--- a/x.html\n+++ b/x.html\n@@ -1 +1 @@\n-<b>\n+<script>alert(1)</script>\n',
    );
    expect(file!.hunks[0]!.lines[1]!.text).toBe('<script>alert(1)</script>');
  });
});

describe('splitRows', () => {
  it('pairs a run of deletions with the insertions after it, the rest against blanks', () => {
    const line = (type: 'context' | 'insert' | 'delete', text: string) => ({
      type,
      oldNumber: null,
      newNumber: null,
      text,
    });
    const rows = splitRows({
      header: '@@',
      lines: [
        line('context', 'c'),
        line('delete', 'd1'),
        line('delete', 'd2'),
        line('delete', 'd3'),
        line('insert', 'i1'),
        line('context', 'c2'),
        line('insert', 'i2'),
        line('insert', 'i3'),
      ],
    });
    expect(rows.map((r) => [r.left?.text ?? null, r.right?.text ?? null])).toEqual([
      ['c', 'c'],
      ['d1', 'i1'],
      ['d2', null],
      ['d3', null],
      ['c2', 'c2'],
      [null, 'i2'],
      [null, 'i3'],
    ]);
  });
});
