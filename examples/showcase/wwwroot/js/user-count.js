// User count page: live connected-user and page-view counters.
"use strict";

(() => {
  const { buildConnection, startConnection, fetchMe, toast } = Showcase;

  const totalUsers = document.getElementById("total-users");
  const totalViews = document.getElementById("total-views");
  const viewMessage = document.getElementById("view-message");

  // Like the original page: WebSockets only, with automatic reconnect.
  const connection = buildConnection("/hubs/userCount", { transport: signalR.HttpTransportType.WebSockets });

  connection.on("updateTotalUsers", (count) => {
    totalUsers.textContent = String(count);
  });

  connection.on("updateTotalViews", (views) => {
    totalViews.textContent = String(views);
  });

  startConnection(connection, {
    async onConnected(reconnected) {
      // A reconnect is not a new page view: only the first start counts one.
      if (reconnected) return;
      const me = await fetchMe();
      const name = me ? me.userName : "guest";
      const reply = await connection.invoke("NewWindowLoaded", name);
      viewMessage.textContent = String(reply);
      viewMessage.classList.remove("muted");
      toast(String(reply), "info");
    },
  });
})();
