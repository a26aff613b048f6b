// The reference trims with Rust's `char::is_whitespace` (the Unicode White_Space property).
// JavaScript's `String.prototype.trim` uses a different set (it strips U+FEFF, keeps U+0085), so
// marker and context matching would disagree with the reference on those characters.

function isWhitespace(code: number): boolean {
  return (
    (code >= 0x09 && code <= 0x0d) ||
    code === 0x20 ||
    code === 0x85 ||
    code === 0xa0 ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000
  );
}

/** `s` without trailing Unicode whitespace, like Rust's `str::trim_end`. */
export function trimEnd(s: string): string {
  let end = s.length;
  while (end > 0 && isWhitespace(s.charCodeAt(end - 1))) end--;
  return end === s.length ? s : s.slice(0, end);
}

/** `s` without leading or trailing Unicode whitespace, like Rust's `str::trim`. */
export function trim(s: string): string {
  let start = 0;
  while (start < s.length && isWhitespace(s.charCodeAt(start))) start++;
  let end = s.length;
  while (end > start && isWhitespace(s.charCodeAt(end - 1))) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}
