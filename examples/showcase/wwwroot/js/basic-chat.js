// Basic chat page: SendMessage to everyone or to one user; errors shown in #chat-error.
"use strict";

(() => {
  const { el, buildConnection, startConnection, fetchMe, showLoginHint, toast, timeNow, errorText } = Showcase;

  const form = document.getElementById("chat-form");
  const senderInput = document.getElementById("chat-sender");
  const receiverInput = document.getElementById("chat-receiver");
  const messageInput = document.getElementById("chat-message");
  const sendButton = document.getElementById("chat-send");
  const errorBox = document.getElementById("chat-error");
  const list = document.getElementById("message-list");

  fetchMe().then((me) => {
    if (me) {
      if (!senderInput.value) senderInput.value = me.userName;
    } else {
      showLoginHint(document.getElementById("login-hint"), "send messages (you can still read them)");
    }
  });

  const connection = buildConnection("/hubs/basicChat");

  connection.on("MessageReceived", (sender, message) => {
    list.querySelector(".empty")?.remove();
    list.append(el("li", { className: "message" },
      el("span", { className: "time", text: timeNow() }),
      el("span", { className: "message-sender", text: String(sender) }),
      el("span", { className: "message-text", text: String(message) })));
    list.scrollTop = list.scrollHeight;
  });

  startConnection(connection);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const sender = senderInput.value.trim();
    const receiver = receiverInput.value.trim();
    const message = messageInput.value;
    if (!sender || !message.trim()) return;
    errorBox.textContent = "";
    sendButton.disabled = true;
    try {
      await connection.invoke("SendMessage", sender, receiver, message);
      messageInput.value = "";
      if (receiver) toast(`Sent to ${receiver}`, "success", 2000);
    } catch (error) {
      errorBox.textContent = errorText(error);
    } finally {
      sendButton.disabled = false;
      messageInput.focus();
    }
  });
})();
