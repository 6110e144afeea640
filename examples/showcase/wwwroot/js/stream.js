// Streaming page: Ticker (server-to-client stream) and Shout (client-to-server upload).
"use strict";

(() => {
  const { el, buildConnection, startConnection, errorText } = Showcase;

  const tickerForm = document.getElementById("ticker-form");
  const countInput = document.getElementById("ticker-count");
  const intervalInput = document.getElementById("ticker-interval");
  const startButton = document.getElementById("ticker-start");
  const stopButton = document.getElementById("ticker-stop");
  const tickerStatus = document.getElementById("ticker-status");
  const tickList = document.getElementById("ticker-list");
  const shoutForm = document.getElementById("shout-form");
  const shoutText = document.getElementById("shout-text");
  const shoutSubmit = document.getElementById("shout-submit");
  const shoutResult = document.getElementById("shout-result");

  const connection = buildConnection("/hubs/stream");

  /** The longest word the page uploads (the server also refuses more than 64 KiB in all). */
  const MAX_WORD_BYTES = 16 * 1024;

  /** The running ticker's subscription, or null. */
  let subscription = null;
  let ticks = 0;
  let connected = false;

  function showStatus(box, state, text, kind) {
    box.dataset.state = state;
    if (kind) box.dataset.kind = kind;
    else delete box.dataset.kind;
    box.textContent = text;
  }

  function updateButtons() {
    startButton.disabled = !connected || subscription !== null;
    stopButton.disabled = subscription === null;
    shoutSubmit.disabled = !connected || shoutForm.dataset.busy === "true";
  }

  function addTick(tick) {
    tickList.querySelector(".empty")?.remove();
    const votes = tick?.votes ?? {};
    const at = tick?.at ? new Date(tick.at) : null;
    const time = at && !Number.isNaN(at.getTime()) ? at.toLocaleTimeString([], { hour12: false }) : "";
    tickList.append(el("li", { className: "tick", dataset: { seq: String(tick?.seq) } },
      el("span", { className: "time", text: time }),
      el("span", { className: "who", text: `#${tick?.seq}` }),
      `Cloak ${votes.cloak} · Stone ${votes.stone} · Wand ${votes.wand}`));
    tickList.scrollTop = tickList.scrollHeight;
  }

  function finish(state, text, kind) {
    subscription = null;
    showStatus(tickerStatus, state, text, kind);
    updateButtons();
  }

  tickerForm.addEventListener("submit", (event) => {
    event.preventDefault();
    if (subscription !== null) return;
    const count = Number(countInput.value);
    const intervalMs = Number(intervalInput.value);
    tickList.replaceChildren();
    ticks = 0;
    showStatus(tickerStatus, "running", "Running…");
    // Each run gets its own handlers: a late callback of an old run changes nothing.
    let active = true;
    const current = connection.stream("Ticker", count, intervalMs).subscribe({
      next(tick) {
        if (!active) return;
        ticks += 1;
        addTick(tick);
      },
      complete() {
        if (!active) return;
        active = false;
        finish("completed", `Completed: ${ticks} ticks.`, "success");
      },
      error(error) {
        if (!active) return;
        active = false;
        finish("error", `Error: ${errorText(error)}`, "error");
      },
    });
    subscription = {
      dispose() {
        if (!active) return;
        active = false;
        current.dispose();
        finish("stopped", `Stopped after ${ticks} ticks.`);
      },
    };
    updateButtons();
  });

  stopButton.addEventListener("click", () => subscription?.dispose());

  shoutForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const words = shoutText.value.split(/\s+/).filter((word) => word.length > 0);
    // One word is one hub message, and the hub takes messages of at most 32 KiB.
    const encoder = new TextEncoder();
    if (words.some((word) => encoder.encode(word).length > MAX_WORD_BYTES)) {
      showStatus(shoutResult, "error", `Error: a word may have at most ${MAX_WORD_BYTES} bytes.`, "error");
      return;
    }
    shoutForm.dataset.busy = "true";
    updateButtons();
    showStatus(shoutResult, "sending", `Uploading ${words.length} words…`);
    try {
      const upload = new signalR.Subject();
      const answer = connection.invoke("Shout", upload);
      for (const word of words) upload.next(word);
      upload.complete();
      const shouted = String(await answer);
      showStatus(shoutResult, "done", shouted === "" ? "(no words to shout)" : shouted, "success");
    } catch (error) {
      showStatus(shoutResult, "error", `Error: ${errorText(error)}`, "error");
    } finally {
      delete shoutForm.dataset.busy;
      updateButtons();
    }
  });

  connection.onreconnecting(() => {
    connected = false;
    updateButtons();
  });
  connection.onclose(() => {
    connected = false;
    updateButtons();
  });

  startConnection(connection, {
    onConnected() {
      connected = true;
      updateButtons();
    },
  });
})();
