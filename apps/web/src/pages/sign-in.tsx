import { useState } from 'preact/hooks';
import { session } from '../api.js';

/** Asks for an API key; it is kept for this tab only (sessionStorage). */
export function SignIn({ refused, onSignedIn }: { refused: boolean; onSignedIn: () => void }) {
  const [key, setKey] = useState('');
  return (
    <form
      class="card narrow"
      onSubmit={(e) => {
        e.preventDefault();
        if (key.trim() === '') return;
        session.signIn(key);
        onSignedIn();
      }}
    >
      <h1>Sign in</h1>
      <p class="muted">
        Paste an API key of this Patchbay. It stays in this tab only and is sent with each request.
      </p>
      <label for="api-key">API key</label>
      <input
        id="api-key"
        type="password"
        autocomplete="off"
        spellcheck={false}
        value={key}
        required
        aria-invalid={refused}
        aria-describedby={refused ? 'api-key-error' : undefined}
        onInput={(e) => setKey(e.currentTarget.value)}
      />
      {refused && (
        <p id="api-key-error" class="field-error" role="alert">
          That key was not accepted.
        </p>
      )}
      <button type="submit" class="primary">
        Sign in
      </button>
    </form>
  );
}
