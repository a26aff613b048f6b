import { hrefOf } from '../router.js';

export function NotFound({ what }: { what: string }) {
  return (
    <section class="card narrow" aria-labelledby="not-found">
      <h1 id="not-found">Not found</h1>
      <p>{what}</p>
      <p>
        <a href={hrefOf.tasks}>Back to the tasks</a>
      </p>
    </section>
  );
}
