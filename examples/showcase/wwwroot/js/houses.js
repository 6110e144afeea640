// Houses page: join and leave groups, notify a group.
"use strict";

(() => {
  const { el, buildConnection, startConnection, toast, timeNow, errorText } = Showcase;

  const HOUSES = ["Gryffindor", "Slytherin", "Hufflepuff", "Ravenclaw"];
  const joinedLabel = document.getElementById("joined-houses");
  const events = document.getElementById("house-events");
  const form = document.getElementById("notify-form");
  const sendButton = document.getElementById("notify-send");

  /** Shows which houses this window belongs to, given the space-separated list from the server. */
  function showJoined(joinedText) {
    const joined = new Set(String(joinedText || "").split(/\s+/).filter(Boolean).map((h) => h.toLowerCase()));
    joinedLabel.textContent = joined.size ? HOUSES.filter((h) => joined.has(h.toLowerCase())).join(", ") : "none";
    for (const house of HOUSES) {
      const key = house.toLowerCase();
      const isMember = joined.has(key);
      document.getElementById(`house-${key}`).classList.toggle("joined", isMember);
      document.getElementById(`join-${key}`).hidden = isMember;
      document.getElementById(`leave-${key}`).hidden = !isMember;
    }
  }

  function addEvent(eventName, house, ...parts) {
    events.querySelector(".empty")?.remove();
    events.prepend(el("li", { dataset: { event: eventName, house } },
      el("span", { className: "time", text: timeNow() }),
      el("span", { className: "tag", text: house }),
      ...parts));
  }

  const connection = buildConnection("/hubs/houses");

  connection.on("subscriptionStatus", (joined, house, hasSubscribed) => {
    showJoined(joined);
    const text = hasSubscribed ? `You joined ${house}.` : `You left ${house}.`;
    addEvent("subscriptionStatus", house, text);
    toast(text, hasSubscribed ? "success" : "info");
  });

  connection.on("userJoined", (house) => {
    addEvent("userJoined", house, "Someone joined the house.");
    toast(`Someone joined ${house}`, "info");
  });

  connection.on("userLeaved", (house) => {
    addEvent("userLeaved", house, "Someone left the house.");
    toast(`Someone left ${house}`, "warning");
  });

  connection.on("houseNotification", (_sender, house, message) => {
    addEvent("houseNotification", house, el("span", { className: "event-text", text: String(message) }));
    toast(`${house}: ${message}`, "info");
  });

  startConnection(connection, {
    onConnected(reconnected) {
      // A new connection belongs to no group yet.
      if (reconnected) {
        showJoined("");
        toast("Reconnected with a new connection: join your houses again.", "warning");
      }
    },
  });

  document.querySelector(".house-list").addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-house]");
    if (!button) return;
    const method = button.dataset.action === "join" ? "JoinHouse" : "LeaveHouse";
    button.disabled = true;
    try {
      await connection.invoke(method, button.dataset.house);
    } catch (error) {
      toast(`${method} failed: ${errorText(error)}`, "error");
    } finally {
      button.disabled = false;
    }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const house = form.elements.house.value;
    const messageInput = form.elements.message;
    const message = messageInput.value.trim();
    if (!message) return;
    sendButton.disabled = true;
    try {
      // The original page uses send: no invocation id and no reply.
      await connection.send("SendNotification", house, message);
      messageInput.value = "";
    } catch (error) {
      toast(`Sending failed: ${errorText(error)}`, "error");
    } finally {
      sendButton.disabled = false;
    }
  });
})();
