import { useMemo, useState } from 'preact/hooks';
import {
  type DiffFile,
  type DiffHunk,
  type DiffLine,
  parsePatch,
  splitRows,
} from '../view/diff.js';

type Layout = 'unified' | 'split';

const SIGN = { context: ' ', insert: '+', delete: '-' } as const;

function fileId(prefix: string, index: number): string {
  return `${prefix}-file-${index}`;
}

function UnifiedHunk({ hunk }: { hunk: DiffHunk }) {
  return (
    <tbody>
      <tr class="hunk-header">
        <td colSpan={3}>{hunk.header}</td>
      </tr>
      {hunk.lines.map((line, i) => (
        <tr key={i} class={`line-${line.type}`}>
          <td class="ln">{line.oldNumber ?? ''}</td>
          <td class="ln">{line.newNumber ?? ''}</td>
          <td class="code">
            <span class="sign" aria-hidden="true">
              {SIGN[line.type]}
            </span>
            {line.text}
          </td>
        </tr>
      ))}
    </tbody>
  );
}

function Side({ line, number }: { line: DiffLine | null; number: number | null }) {
  if (line === null)
    return (
      <>
        <td class="ln empty" />
        <td class="code empty" />
      </>
    );
  return (
    <>
      <td class={`ln line-${line.type}`}>{number ?? ''}</td>
      <td class={`code line-${line.type}`}>
        <span class="sign" aria-hidden="true">
          {SIGN[line.type]}
        </span>
        {line.text}
      </td>
    </>
  );
}

function SplitHunk({ hunk }: { hunk: DiffHunk }) {
  return (
    <tbody>
      <tr class="hunk-header">
        <td colSpan={4}>{hunk.header}</td>
      </tr>
      {splitRows(hunk).map((row, i) => (
        <tr key={i}>
          <Side line={row.left} number={row.left?.oldNumber ?? null} />
          <Side line={row.right} number={row.right?.newNumber ?? null} />
        </tr>
      ))}
    </tbody>
  );
}

function FileDiff({ file, id, layout }: { file: DiffFile; id: string; layout: Layout }) {
  return (
    <section class="diff-file" id={id} aria-label={file.path}>
      <header tabIndex={-1}>
        <span class={`file-status status-${file.status}`}>{file.status}</span>{' '}
        <span class="mono">
          {file.oldPath ? `${file.oldPath} → ` : ''}
          {file.path}
        </span>
        {file.modeChange && <span class="muted small"> mode {file.modeChange}</span>}
        {file.binary ? (
          <span class="counts tag">binary</span>
        ) : (
          <span class="counts">
            <span class="adds">+{file.additions}</span> <span class="dels">−{file.deletions}</span>
          </span>
        )}
      </header>
      {file.binary ? (
        <p class="binary">Binary file: its bytes are in the patch; nothing to show here.</p>
      ) : file.hunks.length === 0 ? (
        <p class="muted small">No content change.</p>
      ) : (
        <table class={`diff ${layout}`}>
          {layout === 'unified' ? (
            <colgroup>
              <col class="ln-col" />
              <col class="ln-col" />
              <col />
            </colgroup>
          ) : (
            <colgroup>
              <col class="ln-col" />
              <col />
              <col class="ln-col" />
              <col />
            </colgroup>
          )}
          {file.hunks.map((hunk, i) =>
            layout === 'unified' ? (
              <UnifiedHunk key={i} hunk={hunk} />
            ) : (
              <SplitHunk key={i} hunk={hunk} />
            ),
          )}
        </table>
      )}
    </section>
  );
}

/** A patch: the list of files with their counts, then each file's hunks, unified or split. */
export function DiffView({ patch, idPrefix = 'diff' }: { patch: string; idPrefix?: string }) {
  const files = useMemo(() => parsePatch(patch), [patch]);
  const [layout, setLayout] = useState<Layout>('unified');
  if (files.length === 0) return <p class="muted">The agent changed nothing.</p>;
  const additions = files.reduce((n, f) => n + f.additions, 0);
  const deletions = files.reduce((n, f) => n + f.deletions, 0);
  return (
    <div class="diff-view">
      <div class="toolbar">
        <p>
          {files.length} file{files.length === 1 ? '' : 's'} changed,{' '}
          <span class="adds">+{additions}</span> <span class="dels">−{deletions}</span>
        </p>
        <fieldset class="segmented">
          <legend class="visually-hidden">Layout</legend>
          {(['unified', 'split'] as const).map((value) => (
            <label key={value}>
              <input
                type="radio"
                name={`${idPrefix}-layout`}
                value={value}
                checked={layout === value}
                onChange={() => setLayout(value)}
              />
              {value === 'unified' ? 'Unified' : 'Side by side'}
            </label>
          ))}
        </fieldset>
      </div>
      <ul class="file-list" aria-label="Changed files">
        {files.map((file, i) => (
          <li key={file.path}>
            <a href={`#${fileId(idPrefix, i)}`} onClick={(e) => jumpTo(e, fileId(idPrefix, i))}>
              <span class="mono">{file.path}</span>
            </a>{' '}
            {file.binary ? (
              <span class="tag">binary</span>
            ) : (
              <span class="counts">
                <span class="adds">+{file.additions}</span>{' '}
                <span class="dels">−{file.deletions}</span>
              </span>
            )}
          </li>
        ))}
      </ul>
      {files.map((file, i) => (
        <FileDiff key={file.path} file={file} id={fileId(idPrefix, i)} layout={layout} />
      ))}
    </div>
  );
}

/** In-page links would change the hash (the router's); scroll to the file instead. */
function jumpTo(e: Event, id: string): void {
  e.preventDefault();
  const target = document.getElementById(id);
  target?.scrollIntoView({ block: 'start' });
  target?.querySelector<HTMLElement>('header')?.focus();
}
