/**
 * The sign-in form: a query key, or the admin token and a project. The key
 * is checked with the API before it is kept, and a refused key shows the
 * API's own message.
 */
import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import { isAdminToken, messageOf, projects, type Project } from "../api";
import { signIn, signinError, storedKey, storedProject } from "../auth";

export function SignIn() {
  const key = useSignal(storedKey());
  const project = useSignal(storedProject());
  const known = useSignal<Project[]>([]);
  const busy = useSignal(false);
  const admin = isAdminToken(key.value.trim());

  // The admin's project picker lists what the token can see; typing the
  // token is the only trigger, debounced so each keystroke is not a request.
  useEffect(() => {
    known.value = [];
    if (!admin) return;
    const timer = setTimeout(() => {
      projects({ key: key.value.trim() })
        .then((list) => (known.value = list))
        .catch(() => {}); // Submitting shows why the token is refused.
    }, 300);
    return () => clearTimeout(timer);
  }, [key.value, admin]);

  const submit = async (e: Event) => {
    e.preventDefault();
    busy.value = true;
    try {
      await signIn(key.value, admin ? project.value : "");
    } catch (err) {
      signinError.value = messageOf(err);
    } finally {
      busy.value = false;
    }
  };

  return (
    <main class="signin">
      <form class="card" data-testid="signin-form" onSubmit={submit}>
        <h1>Contrail</h1>
        <p class="muted">Sign in with a project's query key, or with the admin token and a project.</p>
        <label>
          Key
          <input
            data-testid="signin-key"
            type="password"
            autocomplete="off"
            placeholder="cq_… or ca_…"
            value={key.value}
            onInput={(e) => (key.value = e.currentTarget.value)}
          />
        </label>
        <label>
          Project <span class="muted">(admin token only)</span>
          <input
            data-testid="signin-project"
            list="signin-projects"
            placeholder={admin ? "pick or type a project" : "named by the query key"}
            value={project.value}
            onInput={(e) => (project.value = e.currentTarget.value)}
          />
          <datalist id="signin-projects">
            {known.value.map((p) => (
              <option key={p.name} value={p.name} />
            ))}
          </datalist>
        </label>
        {signinError.value && (
          <p class="error" role="alert" data-testid="signin-error">
            {signinError.value}
          </p>
        )}
        <button data-testid="signin-submit" disabled={busy.value}>
          {busy.value ? "Checking…" : "Sign in"}
        </button>
        <p class="muted small">
          <code>contrail keys query --project NAME</code> prints a query key; <code>contrail serve</code> prints a sign-in link.
        </p>
      </form>
    </main>
  );
}
