import { describe, expect, it } from 'vitest';
import { bearerToken, presentedSecret, presentsSecret, sameSecret } from './auth.js';

const basic = (credentials: string) => `Basic ${Buffer.from(credentials).toString('base64')}`;

describe('presented secrets', () => {
  it('reads a bearer token: one word, any case of the scheme, nothing else', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer  abc  ')).toBe('abc');
    expect(bearerToken('Bearer a b')).toBeUndefined();
    expect(bearerToken(`Bearer ${'x'.repeat(513)}`)).toBeUndefined();
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });

  it('takes the password of basic auth, whatever the user name', () => {
    expect(presentedSecret(basic('any:pass:word'))).toBe('pass:word');
    expect(presentedSecret(basic('no-colon'))).toBeUndefined();
    expect(presentedSecret('Basic !!!')).toBeUndefined();
    expect(presentedSecret('Bearer tok')).toBe('tok');
  });

  it('compares secrets by value only', () => {
    expect(sameSecret('s3cret', 's3cret')).toBe(true);
    expect(sameSecret('s3cret', 's3cret ')).toBe(false);
    expect(presentsSecret(basic('u:s3cret'), 's3cret')).toBe(true);
    expect(presentsSecret('Bearer s3cre', 's3cret')).toBe(false);
    expect(presentsSecret(undefined, 's3cret')).toBe(false);
  });
});
