// Chat rooms page: rooms over REST + hub notifications, public and private messages, presence.
"use strict";

(() => {
  const { el, buildConnection, startConnection, fetchMe, fetchJson, showLoginHint, toast, timeNow, errorText } = Showcase;

  // Most rooms this page lets you create; passed to NewRoomCreated as `maxRoom`.
  const MAX_ROOMS = 10;

  const $ = (id) => document.getElementById(id);
  const app = $("chat-app");
  const errorBox = $("chat-error");
  const roomList = $("room-list");
  const roomForm = $("room-form");
  const roomNameInput = $("room-name");
  const roomCreate = $("room-create");
  const roomDelete = $("room-delete");
  const roomLimit = $("room-limit");
  const roomTitle = $("room-title");
  const publicMessages = $("public-messages");
  const publicForm = $("public-form");
  const publicInput = $("public-message");
  const publicSend = $("public-send");
  const userList = $("user-list");
  const privateForm = $("private-form");
  const privateReceiver = $("private-receiver");
  const privateInput = $("private-message");
  const privateSend = $("private-send");
  const privateMessages = $("private-messages");
  const events = $("chat-events");

  const state = {
    me: null,
    rooms: [],                    // [{id, name}]
    selectedRoomId: null,         // number or null
    messagesByRoom: new Map(),    // room id -> [{time, userName, message}]
    unread: new Map(),            // room id -> count
    users: [],                    // [{id, userName}], every other account
    online: new Set(),            // user ids seen coming online
  };

  const roomKey = (id) => Number(id);
  const selectedRoom = () => state.rooms.find((r) => roomKey(r.id) === state.selectedRoomId) || null;

  function showError(text) {
    errorBox.textContent = text || "";
  }

  /** Handles a failed REST call or invoke; a 401 means the session ended. */
  function fail(what, error) {
    if (error && error.status === 401) {
      showLoginHint($("login-hint"), "chat");
      showError("Your session has ended: log in again.");
      return;
    }
    showError(`${what}: ${errorText(error)}`);
  }

  function addEvent(eventName, ...parts) {
    events.querySelector(".empty")?.remove();
    events.prepend(el("li", { dataset: { event: eventName } }, el("span", { className: "time", text: timeNow() }), ...parts));
  }

  // ---- Rooms -------------------------------------------------------------------------

  function renderRooms() {
    roomList.replaceChildren(...state.rooms.map((room) => {
      const id = roomKey(room.id);
      const unread = state.unread.get(id) || 0;
      return el("li", {
        className: id === state.selectedRoomId ? "room selected" : "room",
        tabIndex: 0,
        dataset: { roomId: String(id) },
      },
      el("span", { className: "room-name", text: room.name }),
      unread ? el("span", { className: "badge", text: unread }) : null);
    }));
    if (state.rooms.length === 0) roomList.append(el("li", { className: "muted", text: "No rooms yet: create one." }));
    roomLimit.textContent = `${state.rooms.length} of ${MAX_ROOMS} rooms`;
    roomCreate.disabled = state.rooms.length >= MAX_ROOMS;
    roomDelete.disabled = !selectedRoom();
    const room = selectedRoom();
    roomTitle.textContent = room ? `# ${room.name}` : "No room selected";
    publicInput.disabled = publicSend.disabled = !room;
  }

  function renderMessages() {
    const list = state.messagesByRoom.get(state.selectedRoomId) || [];
    publicMessages.replaceChildren(...list.map(messageItem));
    if (list.length === 0) {
      publicMessages.append(el("li", { className: "empty", text: selectedRoom() ? "No messages in this room yet." : "Pick a room." }));
    }
    publicMessages.scrollTop = publicMessages.scrollHeight;
  }

  function messageItem({ time, userName, message }) {
    return el("li", { className: "message" },
      el("span", { className: "time", text: time }),
      el("span", { className: "message-sender", text: userName }),
      el("span", { className: "message-text", text: message }));
  }

  function selectRoom(id) {
    state.selectedRoomId = id === null || id === undefined || Number(id) === 0 ? null : roomKey(id);
    state.unread.delete(state.selectedRoomId);
    renderRooms();
    renderMessages();
  }

  let roomsSeq = 0;
  async function loadRooms() {
    const seq = ++roomsSeq;
    try {
      const rooms = await fetchJson("/ChatRooms/GetChatRoom");
      if (seq !== roomsSeq) return;
      state.rooms = Array.isArray(rooms) ? rooms : [];
      const ids = new Set(state.rooms.map((r) => roomKey(r.id)));
      for (const id of [...state.messagesByRoom.keys()]) if (!ids.has(id)) state.messagesByRoom.delete(id);
      for (const id of [...state.unread.keys()]) if (!ids.has(id)) state.unread.delete(id);
      if (!ids.has(state.selectedRoomId)) {
        state.selectedRoomId = state.rooms.length ? roomKey(state.rooms[0].id) : null;
      }
      selectRoom(state.selectedRoomId);
    } catch (error) {
      fail("Could not load the rooms", error);
    }
  }

  roomList.addEventListener("click", (event) => {
    const item = event.target.closest("li[data-room-id]");
    if (item) selectRoom(item.dataset.roomId);
  });
  roomList.addEventListener("keydown", (event) => {
    const item = event.target.closest("li[data-room-id]");
    if (item && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      selectRoom(item.dataset.roomId);
    }
  });

  roomForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = roomNameInput.value.trim();
    if (!name) return;
    if (state.rooms.length >= MAX_ROOMS) {
      showError(`At most ${MAX_ROOMS} rooms: delete one first.`);
      return;
    }
    roomCreate.disabled = true;
    showError("");
    try {
      const room = await fetchJson("/ChatRooms/PostChatRoom", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ id: 0, name }),
      });
      roomNameInput.value = "";
      state.selectedRoomId = roomKey(room.id);
      await connection.invoke("NewRoomCreated", MAX_ROOMS, room.id, room.name);
    } catch (error) {
      fail("Could not create the room", error);
      loadRooms(); // the room may exist even if the notification failed
    } finally {
      renderRooms();
    }
  });

  roomDelete.addEventListener("click", async () => {
    const room = selectedRoom();
    if (!room) return;
    roomDelete.disabled = true;
    showError("");
    try {
      const result = await fetchJson(`/ChatRooms/DeleteChatRoom/${encodeURIComponent(room.id)}`, { method: "DELETE" });
      await connection.invoke("RoomDeleted", result.deleted, room.name, result.selected);
    } catch (error) {
      fail("Could not delete the room", error);
      loadRooms();
    } finally {
      renderRooms();
    }
  });

  publicForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const room = selectedRoom();
    const message = publicInput.value;
    if (!room || !message.trim()) return;
    publicSend.disabled = true;
    showError("");
    try {
      await connection.invoke("SendPublicMessage", room.id, room.name, message);
      publicInput.value = "";
    } catch (error) {
      fail("Could not send the message", error);
    } finally {
      publicSend.disabled = false;
      publicInput.focus();
    }
  });

  // ---- Users and private messages ----------------------------------------------------

  function renderUsers() {
    userList.replaceChildren(...state.users.map((user) => {
      const online = state.online.has(user.id);
      return el("li", { className: online ? "user online" : "user", dataset: { userId: user.id } },
        el("span", { className: "user-name", text: user.userName }),
        el("span", { className: online ? "dot online" : "dot", title: online ? "online" : "not seen online" }));
    }));
    if (state.users.length === 0) userList.append(el("li", { className: "muted", text: "Nobody else has an account yet." }));

    const chosen = privateReceiver.value;
    privateReceiver.replaceChildren(...state.users.map((user) =>
      el("option", { value: user.id, text: user.userName })));
    if (state.users.some((u) => u.id === chosen)) privateReceiver.value = chosen;
    privateSend.disabled = state.users.length === 0;
  }

  let usersSeq = 0;
  async function loadUsers() {
    const seq = ++usersSeq;
    try {
      const users = await fetchJson("/ChatRooms/GetChatUser");
      if (seq !== usersSeq) return;
      state.users = Array.isArray(users) ? users : [];
      renderUsers();
    } catch (error) {
      fail("Could not load the users", error);
    }
  }

  userList.addEventListener("click", (event) => {
    const item = event.target.closest("li[data-user-id]");
    if (!item) return;
    privateReceiver.value = item.dataset.userId;
    privateInput.focus();
  });

  privateForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const receiver = state.users.find((u) => u.id === privateReceiver.value);
    const message = privateInput.value;
    if (!receiver || !message.trim()) return;
    privateSend.disabled = true;
    showError("");
    try {
      await connection.invoke("SendPrivateMessage", receiver.id, receiver.userName, message);
      privateInput.value = "";
    } catch (error) {
      fail("Could not send the private message", error);
    } finally {
      privateSend.disabled = false;
      privateInput.focus();
    }
  });

  // ---- Hub ---------------------------------------------------------------------------

  const connection = buildConnection("/hubs/chat");

  connection.on("UserConnected", (userId, userName) => {
    if (state.me && userId === state.me.id) return;
    state.online.add(userId);
    if (state.users.some((u) => u.id === userId)) renderUsers();
    else loadUsers(); // an account created after this page loaded
    addEvent("UserConnected", el("span", { className: "who", text: userName }), "came online.");
    toast(`${userName} came online`, "success", 2500);
  });

  connection.on("UserDisconnected", (userId, userName) => {
    if (state.me && userId === state.me.id) return;
    state.online.delete(userId);
    renderUsers();
    addEvent("UserDisconnected", el("span", { className: "who", text: userName }), "went offline.");
    toast(`${userName} went offline`, "warning", 2500);
  });

  connection.on("NewRoomCreated", (_maxRoom, roomId, roomName, userId, userName) => {
    loadRooms();
    const who = state.me && userId === state.me.id ? "You" : userName;
    addEvent("NewRoomCreated", el("span", { className: "who", text: who }), "created the room ",
      el("strong", { text: roomName }), ".");
    toast(`${who} created the room ${roomName}`, "info");
  });

  connection.on("RoomDeleted", (deletedRoomId, deletedRoomName, selectedRoomId, userId, userName) => {
    const deleted = roomKey(deletedRoomId);
    state.messagesByRoom.delete(deleted);
    state.unread.delete(deleted);
    if (state.selectedRoomId === deleted) {
      state.selectedRoomId = Number(selectedRoomId) ? roomKey(selectedRoomId) : null;
    }
    loadRooms();
    const who = state.me && userId === state.me.id ? "You" : userName;
    addEvent("RoomDeleted", el("span", { className: "who", text: who }), "deleted the room ",
      el("strong", { text: deletedRoomName }), ".");
    toast(`${who} deleted the room ${deletedRoomName}`, "warning");
  });

  connection.on("PublicMessageReceived", (roomId, roomName, userId, userName, message) => {
    const id = roomKey(roomId);
    const entry = { time: timeNow(), userName: String(userName), message: String(message) };
    if (!state.messagesByRoom.has(id)) state.messagesByRoom.set(id, []);
    state.messagesByRoom.get(id).push(entry);
    if (id === state.selectedRoomId) {
      publicMessages.querySelector(".empty")?.remove();
      publicMessages.append(messageItem(entry));
      publicMessages.scrollTop = publicMessages.scrollHeight;
    } else {
      state.unread.set(id, (state.unread.get(id) || 0) + 1);
      renderRooms();
      toast(`${userName} in ${roomName}: ${message}`, "info");
    }
  });

  connection.on("PrivateMessageReceived", (senderId, senderName, receiverId, receiverName, message, chatId) => {
    const outgoing = state.me && senderId === state.me.id;
    const direction = outgoing ? `You → ${receiverName}` : `${senderName} → you`;
    privateMessages.querySelector(".empty")?.remove();
    privateMessages.append(el("li", { className: "message", dataset: { chatId: String(chatId) } },
      el("span", { className: "time", text: timeNow() }),
      el("span", { className: "message-direction message-sender", text: direction }),
      el("span", { className: "message-text", text: String(message) })));
    privateMessages.scrollTop = privateMessages.scrollHeight;
    if (!outgoing) toast(`Private message from ${senderName}`, "info");
  });

  // ---- Start -------------------------------------------------------------------------

  fetchMe().then((me) => {
    if (!me) {
      showLoginHint($("login-hint"), "chat");
      return;
    }
    state.me = me;
    app.hidden = false;
    renderRooms();
    renderMessages();
    renderUsers();
    loadRooms();
    loadUsers();
    startConnection(connection, {
      onConnected(reconnected) {
        // Rooms and users may have changed while the connection was away.
        if (reconnected) {
          loadRooms();
          loadUsers();
        }
      },
    });
  });
})();
