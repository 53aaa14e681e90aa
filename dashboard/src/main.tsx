/**
 * The dashboard's shell: sign-in until a key is accepted, then the
 * navigation and the page the hash names. Each page is keyed by its path so
 * leaving a page drops its state and stops its streams.
 */
import { render } from "preact";
import "./style.css";
import { checking, restore, session, signOut } from "./auth";
import { ErrorBanner } from "./components/ErrorBanner";
import { Dashboard, Dashboards } from "./pages/Dashboards";
import { Funnels } from "./pages/Funnels";
import { Insights } from "./pages/Insights";
import { Overview } from "./pages/Overview";
import { Persons } from "./pages/Persons";
import { Retention } from "./pages/Retention";
import { SignIn } from "./pages/SignIn";
import { Sql } from "./pages/Sql";
import { Trends } from "./pages/Trends";
import { route } from "./router";

const pages = [
  ["overview", "/", "Overview"],
  ["trends", "/trends", "Trends"],
  ["funnels", "/funnels", "Funnels"],
  ["retention", "/retention", "Retention"],
  ["persons", "/persons", "Persons"],
  ["sql", "/sql", "SQL"],
  ["insights", "/insights", "Insights"],
  ["dashboards", "/dashboards", "Dashboards"],
] as const;

function Page({ path }: { path: string }) {
  if (path === "/") return <Overview />;
  if (path === "/trends") return <Trends />;
  if (path === "/funnels") return <Funnels />;
  if (path === "/retention") return <Retention />;
  if (path === "/persons") return <Persons />;
  if (path === "/sql") return <Sql />;
  if (path === "/insights") return <Insights />;
  if (path === "/dashboards") return <Dashboards />;
  if (path.startsWith("/dashboards/")) return <Dashboard id={decodeURIComponent(path.slice("/dashboards/".length))} />;
  return <ErrorBanner message={`There is no page at #${path}.`} />;
}

function App() {
  if (checking.value) return <main class="signin muted">Checking your key…</main>;
  const current = session.value;
  if (!current) return <SignIn />;
  const path = route.value.path;
  const section = path === "/" ? "/" : `/${path.split("/")[1]}`;
  return (
    <>
      <header>
        <a class="brand" href="#/">
          Contrail
        </a>
        <span class="muted project" title="project">
          {current.project}
        </span>
        <nav>
          {pages.map(([id, target, label]) => (
            <a key={id} href={`#${target}`} data-testid={`nav-${id}`} class={section === target ? "active" : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <button type="button" class="link" data-testid="signout" onClick={() => signOut()}>
          Sign out
        </button>
      </header>
      <main>
        <Page key={path} path={path} />
      </main>
    </>
  );
}

// restore() first: it takes a linked key out of the address bar before the
// first render reads the route.
void restore();
render(<App />, document.getElementById("app")!);
