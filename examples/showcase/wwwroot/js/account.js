// Account page: register, log in and log out against the /account endpoints.
"use strict";

(() => {
  const { el, fetchMe, renderWhoAmI, toast } = Showcase;

  const current = document.getElementById("account-current");
  const message = document.getElementById("account-message");
  const logoutButton = document.getElementById("logout-button");

  function showMessage(text, kind) {
    message.textContent = text;
    message.dataset.kind = kind;
  }

  function showUser(user) {
    current.replaceChildren();
    if (user) {
      current.dataset.user = user.userName;
      current.append("Logged in as ", el("strong", { text: user.userName }), ".");
    } else {
      delete current.dataset.user;
      current.textContent = "Not logged in.";
    }
    logoutButton.hidden = !user;
    renderWhoAmI(user);
  }

  const failures = {
    register: { 400: "Enter both a user name and a password.", 409: "That user name is already taken." },
    login: { 400: "Enter both a user name and a password.", 401: "Wrong user name or password." },
  };

  // Bumped by every action so that a slow initial GET /account/me cannot overwrite its result.
  let actions = 0;

  async function submitCredentials(kind, form) {
    actions += 1;
    const userName = form.elements.userName.value.trim();
    const password = form.elements.password.value;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    showMessage(kind === "register" ? "Registering…" : "Logging in…", "pending");
    try {
      const res = await fetch(`/account/${kind}`, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ userName, password }),
      });
      if (!res.ok) {
        showMessage(failures[kind][res.status] || `The server answered ${res.status}.`, "error");
        return;
      }
      const user = await res.json();
      showUser(user);
      fetchMe({ refresh: true });
      form.reset();
      const text = kind === "register"
        ? `Registered and logged in as ${user.userName}.`
        : `Logged in as ${user.userName}.`;
      showMessage(text, "success");
      toast(text, "success");
    } catch (error) {
      showMessage(`Request failed: ${Showcase.errorText(error)}`, "error");
    } finally {
      button.disabled = false;
    }
  }

  document.getElementById("register-form").addEventListener("submit", (event) => {
    event.preventDefault();
    submitCredentials("register", event.currentTarget);
  });

  document.getElementById("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    submitCredentials("login", event.currentTarget);
  });

  logoutButton.addEventListener("click", async () => {
    actions += 1;
    logoutButton.disabled = true;
    try {
      const res = await fetch("/account/logout", { method: "POST", credentials: "same-origin" });
      if (!res.ok && res.status !== 401) throw new Error(`The server answered ${res.status}.`);
      showUser(null);
      fetchMe({ refresh: true });
      showMessage("Logged out.", "success");
    } catch (error) {
      showMessage(`Logout failed: ${Showcase.errorText(error)}`, "error");
    } finally {
      logoutButton.disabled = false;
    }
  });

  fetchMe().then((user) => {
    if (actions === 0) showUser(user);
  });
})();
