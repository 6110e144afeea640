// Shared helpers for the showcase pages, exposed as the global `Showcase`.
//
// Elements this script looks for on every page (all optional):
//   #whoami             header badge: "Logged in as <name>" or a link to the account page
//   #connection-status  hub connection badge; its data-state is one of
//                       "connecting", "connected", "reconnecting", "disconnected"
//   #toasts             toast container (created on demand if absent)
//
// User text is only ever written with textContent / text nodes, never innerHTML.
"use strict";

window.Showcase = (() => {
  /**
   * Creates an element. `props` may hold `className`, `text`, `dataset`, `attrs`, `on`
   * (event listeners) or any plain DOM property; `children` are nodes or strings
   * (strings become text nodes).
   */
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "attrs") for (const [name, v] of Object.entries(value)) node.setAttribute(name, v);
      else if (key === "on") for (const [type, fn] of Object.entries(value)) node.addEventListener(type, fn);
      else node[key] = value;
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** Shows a short-lived notice in the corner. `kind`: "info", "success", "warning" or "error". */
  function toast(message, kind = "info", timeoutMs = 4000) {
    let box = document.getElementById("toasts");
    if (!box) {
      box = el("div", { id: "toasts", className: "toasts", attrs: { "aria-live": "polite" } });
      document.body.append(box);
    }
    const item = el("div", { className: `toast toast-${kind}`, text: message, attrs: { role: "status" } });
    box.append(item);
    setTimeout(() => {
      item.classList.add("toast-leaving");
      setTimeout(() => item.remove(), 300);
    }, timeoutMs);
    return item;
  }

  /** The logged-in user (`{id, userName}`) or null; cached for the page's lifetime. */
  let mePromise = null;
  function fetchMe({ refresh = false } = {}) {
    if (!mePromise || refresh) {
      mePromise = fetch("/account/me", { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then((res) => (res.ok ? res.json() : null))
        .catch(() => null);
    }
    return mePromise;
  }

  /** Fills the header's #whoami badge. */
  let whoAmIRendered = false;
  function renderWhoAmI(user) {
    whoAmIRendered = true;
    const badge = document.getElementById("whoami");
    if (!badge) return;
    badge.replaceChildren();
    if (user) {
      badge.dataset.user = user.userName;
      badge.append("Logged in as ", el("strong", { text: user.userName }), " · ",
        el("a", { href: "/account.html", text: "account" }));
    } else {
      delete badge.dataset.user;
      badge.append("Not logged in · ", el("a", { href: "/account.html", text: "log in" }));
    }
  }

  /** Fills `container` with a "log in first" hint linking to the account page and shows it. */
  function showLoginHint(container, what = "use this page") {
    if (!container) return;
    container.replaceChildren(
      el("strong", { text: "Log in first. " }),
      `You need an account to ${what}: `,
      el("a", { href: "/account.html", text: "register or log in" }),
      ", then come back.",
    );
    container.hidden = false;
  }

  function setStatus(state, detail) {
    const badge = document.getElementById("connection-status");
    if (!badge) return;
    badge.dataset.state = state;
    badge.textContent = detail ? `${state} (${detail})` : state;
  }

  /**
   * Builds a hub connection with automatic reconnect. `options` goes to `withUrl`
   * (for example `{ transport: signalR.HttpTransportType.WebSockets }`).
   */
  function buildConnection(path, options = {}) {
    return new signalR.HubConnectionBuilder()
      .withUrl(path, { ...options, ...transportFromPage() })
      .withAutomaticReconnect()
      .configureLogging(signalR.LogLevel.Warning)
      .build();
  }

  /**
   * A transport forced by the page's URL, e.g. `basic-chat.html?transport=LongPolling`
   * (WebSockets, ServerSentEvents or LongPolling); without one the client picks as usual.
   */
  function transportFromPage() {
    const name = new URLSearchParams(location.search).get("transport");
    const transport = name ? signalR.HttpTransportType[name] : undefined;
    return transport === undefined ? {} : { transport };
  }

  /**
   * Starts `connection`, keeping #connection-status up to date. `onConnected` runs after
   * the first start and after every reconnect (with `true` for a reconnect).
   * If the first start fails it is retried every few seconds.
   */
  function startConnection(connection, { onConnected } = {}) {
    connection.onreconnecting(() => {
      setStatus("reconnecting");
      toast("Connection lost, reconnecting…", "warning");
    });
    connection.onreconnected(async () => {
      setStatus("connected");
      toast("Reconnected", "success");
      if (onConnected) await onConnected(true);
    });
    connection.onclose((error) => {
      setStatus("disconnected", error ? error.message : undefined);
    });

    const attempt = async () => {
      setStatus("connecting");
      try {
        await connection.start();
      } catch (error) {
        setStatus("disconnected", errorText(error));
        setTimeout(attempt, 5000);
        return;
      }
      setStatus("connected");
      if (onConnected) {
        try {
          await onConnected(false);
        } catch (error) {
          toast(errorText(error), "error");
        }
      }
    };
    return attempt();
  }

  /** A readable message for an error thrown by fetch or by a hub invocation. */
  function errorText(error) {
    if (!error) return "unknown error";
    return error.message || String(error);
  }

  /** Reads a JSON response, throwing an Error with the status on failure. */
  async function fetchJson(url, init = {}) {
    const res = await fetch(url, {
      credentials: "same-origin",
      ...init,
      headers: { Accept: "application/json", ...(init.headers || {}) },
    });
    if (!res.ok) {
      const error = new Error(`${init.method || "GET"} ${url} answered ${res.status}`);
      error.status = res.status;
      throw error;
    }
    const type = res.headers.get("content-type") || "";
    return type.includes("json") ? res.json() : null;
  }

  /** Current time as HH:MM:SS, for message lists. */
  function timeNow() {
    return new Date().toLocaleTimeString([], { hour12: false });
  }

  /** The demo pages, in the order the header lists them. */
  const PAGES = [
    ["/user-count.html", "User count"],
    ["/deathly-hallows.html", "Deathly Hallows"],
    ["/houses.html", "Houses"],
    ["/basic-chat.html", "Basic chat"],
    ["/orders.html", "Orders"],
    ["/chat.html", "Chat"],
    ["/stream.html", "Streaming"],
  ];

  /** Fills the header's navigation, so the page list lives in one place. */
  function renderNav() {
    const nav = document.getElementById("site-nav");
    if (!nav) return;
    nav.replaceChildren(...PAGES.map(([href, text]) => el("a", { href, text })));
  }

  // Every page shows the navigation and who is logged in.
  // A page that already rendered a fresher state (after logging in, say) wins.
  const showWhoAmI = () => fetchMe().then((user) => { if (!whoAmIRendered) renderWhoAmI(user); });
  const decorate = () => { renderNav(); showWhoAmI(); };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", decorate);
  else decorate();

  return {
    el, toast, fetchMe, renderWhoAmI, showLoginHint, buildConnection, startConnection,
    setStatus, errorText, fetchJson, timeNow,
  };
})();
