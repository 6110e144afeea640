// Orders page: list orders and reload the list when the hub says a new one exists.
"use strict";

(() => {
  const { el, buildConnection, startConnection, fetchJson, toast, errorText } = Showcase;

  const table = document.getElementById("order-table");
  const rows = document.getElementById("order-rows");
  const errorBox = document.getElementById("order-error");

  // Only the newest of overlapping loads may fill the table.
  let loadSeq = 0;

  async function loadOrders() {
    const seq = ++loadSeq;
    try {
      const body = await fetchJson("/Home/GetAllOrder");
      if (seq !== loadSeq) return;
      const orders = (body && Array.isArray(body.data)) ? body.data : [];
      rows.replaceChildren(...orders.map((order) =>
        el("tr", { dataset: { id: String(order.id) } },
          el("td", { className: "order-id", text: order.id }),
          el("td", { className: "order-name", text: order.name }),
          el("td", { className: "order-item", text: order.itemName }),
          el("td", { className: "order-count", text: order.count }))));
      if (orders.length === 0) {
        rows.append(el("tr", {}, el("td", { colSpan: 4, className: "muted", text: "No orders yet." })));
      }
      table.dataset.rows = String(orders.length);
      table.dataset.loaded = "true";
      errorBox.textContent = "";
    } catch (error) {
      if (seq === loadSeq) errorBox.textContent = `Could not load the orders: ${errorText(error)}`;
    }
  }

  const connection = buildConnection("/hubs/order");

  connection.on("NewOrderCreated", () => {
    toast("A new order was placed", "info");
    loadOrders();
  });

  loadOrders();
  // After a reconnect, orders may have been placed while this page was away.
  startConnection(connection, { onConnected: (reconnected) => (reconnected ? loadOrders() : undefined) });
})();
