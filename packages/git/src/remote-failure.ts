/** Why git's talk with a remote failed, sorted by its (LC_ALL=C) message. */
export type RemoteFailure =
  'ref_not_found' | 'redirect' | 'auth' | 'not_found' | 'network' | 'git_error';

/** Sorts a failed fetch, ls-remote or push by git's (LC_ALL=C) message. */
export function classifyRemoteFailure(stderr: string): RemoteFailure {
  if (
    /couldn't find remote ref|not our ref|no such remote ref|Remote branch .* not found|unadvertised object/i.test(
      stderr,
    )
  ) {
    return 'ref_not_found';
  }
  if (/returned error: 30\d|redirect/i.test(stderr)) return 'redirect';
  if (
    /returned error: 40[13]|Authentication failed|could not read (Username|Password)|terminal prompts disabled|Permission denied/i.test(
      stderr,
    )
  ) {
    return 'auth';
  }
  if (
    /returned error: 404|Repository not found|does not appear to be a git repository|not found/i.test(
      stderr,
    )
  ) {
    return 'not_found';
  }
  if (
    /Could not resolve|Failed to connect|Connection refused|Couldn't connect|Connection reset|timed out|SSL|TLS|Empty reply|Recv failure|Send failure|early EOF|unexpected disconnect/i.test(
      stderr,
    )
  ) {
    return 'network';
  }
  return 'git_error';
}
