// Deathly Hallows page: vote over HTTP, counts pushed by the hub.
"use strict";

(() => {
  const { el, buildConnection, startConnection, toast, timeNow, errorText } = Showcase;

  const TYPES = ["cloak", "stone", "wand"];
  const counts = document.getElementById("vote-counts");
  const log = document.getElementById("vote-log");

  function showCounts(values) {
    for (const type of TYPES) {
      document.getElementById(`count-${type}`).textContent = String(Number(values[type]) || 0);
    }
  }

  function addLogLine(text) {
    log.querySelector(".empty")?.remove();
    log.prepend(el("li", {}, el("span", { className: "time", text: timeNow() }), text));
  }

  const connection = buildConnection("/hubs/deathlyHallows");

  // Counts pushed since the last GetVoteStatus() call started; a push is never older
  // than the status answer, so a status answer racing with a push is dropped.
  let pushes = 0;

  connection.on("updateDeathlyHallowCount", (cloak, stone, wand) => {
    pushes += 1;
    showCounts({ cloak, stone, wand });
    counts.dataset.loaded = "true";
    addLogLine(`Cloak ${cloak} · Stone ${stone} · Wand ${wand}`);
  });

  startConnection(connection, {
    async onConnected() {
      const before = pushes;
      const status = await connection.invoke("GetVoteStatus");
      if (pushes === before) showCounts(status || {});
      counts.dataset.loaded = "true";
    },
  });

  for (const type of TYPES) {
    const button = document.getElementById(`vote-${type}`);
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const res = await fetch(`/home/DeathlyHallows?type=${encodeURIComponent(type)}`, { credentials: "same-origin" });
        if (!res.ok) throw new Error(`The server answered ${res.status}.`);
        toast(`Vote for the ${type} sent`, "success", 2000);
      } catch (error) {
        toast(`Vote failed: ${errorText(error)}`, "error");
      } finally {
        button.disabled = false;
      }
    });
  }
})();
