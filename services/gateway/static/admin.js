/* BackOrder admin: a little vanilla JS over the server-rendered pages. Every mutation is a
   fetch() to /api/v1 with the CSRF token from <meta name="csrf-token"> (double submit).
   Merchant text is always inserted with textContent, never as HTML. */
(function () {
  "use strict";
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  function toast(text, kind) {
    const box = $("#toasts");
    if (!box) return;
    const el = document.createElement("div");
    el.className = "toast" + (kind ? " toast--" + kind : "");
    el.setAttribute("role", kind === "error" ? "alert" : "status");
    el.textContent = text;
    box.appendChild(el);
    setTimeout(() => el.remove(), kind === "error" ? 9000 : 4500);
  }

  class ApiError extends Error {
    constructor(body, status) {
      const error = (body && body.error) || { code: "internal", message: "Something went wrong", details: {} };
      super(error.message);
      this.code = error.code;
      this.details = error.details || {};
      this.status = status;
    }
  }

  async function api(method, url, body) {
    const init = { method, headers: { "X-CSRF-Token": csrf(), Accept: "application/json" }, credentials: "same-origin" };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
    const response = await fetch(url, init);
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!response.ok && !(data && data.data)) throw new ApiError(data, response.status);
    return { status: response.status, body: data };
  }

  /* Human text for an API error, naming the field/item where the details say so. */
  function describe(err, names) {
    const errors = (err.details && err.details.errors) || [];
    if (err.code === "plan_limit_reached") {
      const d = err.details;
      return "Your " + (d.plan || "current") + " plan allows " + d.limit + " assigned products (" + d.assigned +
        " assigned). Upgrade on the Plans page to assign more.";
    }
    if (errors.length) {
      return err.message + ": " + errors.slice(0, 3).map((e) => {
        const who = e.item !== undefined && names ? names[e.item] + " " : "";
        return who + (e.field || e.column || "") + " " + String(e.reason || e.message || "").replace(/_/g, " ");
      }).join("; ");
    }
    if (err.details && err.details.product_ids) return err.message + " (" + err.details.product_ids.join(", ") + ")";
    return err.message;
  }

  function intOrNull(value) {
    const text = String(value).trim();
    return text === "" ? null : Number(text);
  }

  /* ---------- selection, bulk bar, dropdowns ---------- */
  function selectedIds() { return $$("[data-select]:checked").map((el) => el.value); }
  function refreshBulkbar() {
    const ids = selectedIds();
    const bar = $("[data-bulkbar]");
    if (bar) bar.classList.toggle("is-visible", ids.length > 0);
    $$("[data-selected-count]").forEach((el) => { el.textContent = String(ids.length); });
    const all = $("[data-select-all]");
    const boxes = $$("[data-select]");
    if (all) all.checked = boxes.length > 0 && boxes.every((b) => b.checked);
  }
  document.addEventListener("change", (ev) => {
    if (ev.target.matches("[data-select-all]")) {
      $$("[data-select]").forEach((b) => { b.checked = ev.target.checked; });
    }
    if (ev.target.matches("[data-select], [data-select-all]")) refreshBulkbar();
  });
  document.addEventListener("click", (ev) => {
    const toggle = ev.target.closest("[data-dropdown-toggle]");
    $$("[data-dropdown]").forEach((d) => { if (!toggle || !d.contains(toggle)) d.classList.remove("is-open"); });
    if (toggle) toggle.closest("[data-dropdown]").classList.toggle("is-open");
  });

  /* ---------- BackOrder configuration pop-up (assign and edit) ---------- */
  const dialog = $("#config-dialog");
  let configTarget = null;
  function salableText(stock, threshold) {
    if (threshold === null) return "∞";
    if (Number.isNaN(stock) || Number.isNaN(threshold)) return "—";
    return String(stock + threshold);
  }
  function refreshLive() {
    const stock = intOrNull($("#cfg-stock").value);
    const threshold = intOrNull($("#cfg-threshold").value);
    $('[data-live="stock"]').textContent = stock === null ? "0" : String(stock);
    $('[data-live="threshold"]').textContent = threshold === null ? "∞" : String(threshold);
    $('[data-live="salable"]').textContent = salableText(stock === null ? 0 : stock, threshold);
  }
  function openConfig(product, mode) {
    configTarget = { product, mode };
    $("#config-title").textContent = mode === "assign" ? "Assign to BackOrder" : "Edit BackOrder configuration";
    $("#config-product").textContent = product.name + (product.sku ? " · SKU " + product.sku : "") + " · ID " + product.product_id;
    $("#cfg-stock").value = product.stock === undefined || product.stock === null ? 0 : product.stock;
    $("#cfg-threshold").value = product.threshold === undefined || product.threshold === null ? "" : product.threshold;
    $("#cfg-incoming").value = product.incoming_stock || 0;
    $("#cfg-date").value = product.back_in_stock_date || "";
    $("#config-save").textContent = mode === "assign" ? "Assign product" : "Save changes";
    $("#config-error").textContent = "";
    $$("#config-form input").forEach((i) => i.classList.remove("is-invalid"));
    refreshLive();
    dialog.showModal();
  }
  if (dialog) {
    $$("#config-form input").forEach((input) => input.addEventListener("input", refreshLive));
    $("#config-form").addEventListener("submit", async (ev) => {
      if (ev.submitter && ev.submitter.value === "cancel") return;
      ev.preventDefault();
      const body = {
        stock: intOrNull($("#cfg-stock").value) ?? 0,
        threshold: intOrNull($("#cfg-threshold").value),
        incoming_stock: intOrNull($("#cfg-incoming").value) ?? 0,
        back_in_stock_date: $("#cfg-date").value || null,
      };
      const save = $("#config-save");
      save.disabled = true;
      try {
        if (configTarget.mode === "assign") {
          await api("POST", "/api/v1/backorder-products", { product_id: configTarget.product.product_id, ...body });
          toast(configTarget.product.name + " is now on BackOrder", "success");
        } else {
          await api("PATCH", "/api/v1/backorder-products/" + configTarget.product.product_id, body);
          toast(configTarget.product.name + " saved", "success");
        }
        dialog.close();
        location.reload();
      } catch (err) {
        $("#config-error").textContent = describe(err);
        ((err.details && err.details.errors) || []).forEach((e) => {
          const input = $('#config-form [name="' + e.field + '"]');
          if (input) input.classList.add("is-invalid");
        });
      } finally { save.disabled = false; }
    });
  }
  document.addEventListener("click", (ev) => {
    const assign = ev.target.closest("[data-assign]");
    if (assign) openConfig(JSON.parse(assign.dataset.assign), "assign");
    const edit = ev.target.closest("[data-edit]");
    if (edit) openConfig(JSON.parse(edit.dataset.edit), "edit");
  });

  /* ---------- unassign with its two options ---------- */
  const unassignDialog = $("#unassign-dialog");
  let unassignIds = [];
  function openUnassign(ids, label) {
    unassignIds = ids;
    $("#unassign-what").textContent = label;
    $("#unassign-error").textContent = "";
    unassignDialog.showModal();
  }
  if (unassignDialog) {
    $("#unassign-form").addEventListener("submit", async (ev) => {
      if (ev.submitter && ev.submitter.value === "cancel") return;
      ev.preventDefault();
      const form = $("#unassign-form");
      const options = { restore_tracking: form.restore_tracking.checked, disable_product: form.disable_product.checked };
      try {
        if (unassignIds.length === 1) {
          await api("DELETE", "/api/v1/backorder-products/" + unassignIds[0] + "?restore_tracking=" +
            options.restore_tracking + "&disable_product=" + options.disable_product);
        } else {
          await api("POST", "/api/v1/backorder-products/bulk-unassign", { product_ids: unassignIds.map(Number), ...options });
        }
        unassignDialog.close();
        toast(unassignIds.length + " product(s) unassigned", "success");
        location.reload();
      } catch (err) { $("#unassign-error").textContent = describe(err); }
    });
  }
  document.addEventListener("click", (ev) => {
    const one = ev.target.closest("[data-unassign]");
    if (one) { const p = JSON.parse(one.dataset.unassign); openUnassign([p.product_id], p.name); }
    if (ev.target.closest("[data-bulk-unassign]")) {
      const ids = selectedIds();
      openUnassign(ids, ids.length + " selected product" + (ids.length === 1 ? "" : "s"));
    }
    if (ev.target.closest("[data-bulk-assign]")) location.href = "/admin/bulk-assign?ids=" + selectedIds().join(",");
    if (ev.target.closest("[data-bulk-edit]")) location.href = "/admin/bulk-edit?ids=" + selectedIds().join(",");
  });

  /* ---------- sync ---------- */
  const syncButton = $("[data-sync]");
  if (syncButton) syncButton.addEventListener("click", async () => {
    syncButton.disabled = true;
    syncButton.textContent = "Syncing…";
    try {
      const { body } = await api("POST", "/api/v1/sync", {});
      toast("Inventory synced: " + body.data.checked + " checked, " + body.data.changed + " updated from BigCommerce", "success");
      if (body.data.changed) setTimeout(() => location.reload(), 800);
    } catch (err) { toast(describe(err), "error"); }
    finally { syncButton.disabled = false; syncButton.textContent = "Sync inventory"; }
  });

  /* ---------- bulk assign / bulk edit page ---------- */
  const bulkTable = $("[data-bulk-table]");
  function refreshRow(row) {
    const stock = intOrNull($('[name="stock"]', row).value);
    const threshold = intOrNull($('[name="threshold"]', row).value);
    $("[data-salable]", row).textContent = salableText(stock === null ? 0 : stock, threshold);
  }
  if (bulkTable) {
    $$("[data-row]").forEach((row) => { refreshRow(row); row.addEventListener("input", () => refreshRow(row)); });
    $("[data-fill-apply]").addEventListener("click", () => {
      $$("[data-fill]").forEach((source) => {
        if (source.value === "") return;
        $$('[data-row] [name="' + source.dataset.fill + '"]').forEach((input) => { input.value = source.value; });
      });
      $$("[data-row]").forEach(refreshRow);
    });
    $("[data-bulk-save]").addEventListener("click", async (ev) => {
      const button = ev.currentTarget;
      const rows = $$("[data-row]");
      const names = rows.map((r) => $(".product-cell strong", r).textContent);
      const items = rows.map((row) => ({
        product_id: Number(row.dataset.productId),
        stock: intOrNull($('[name="stock"]', row).value) ?? 0,
        threshold: intOrNull($('[name="threshold"]', row).value),
        incoming_stock: intOrNull($('[name="incoming_stock"]', row).value) ?? 0,
        back_in_stock_date: $('[name="back_in_stock_date"]', row).value || null,
      }));
      $$("[data-row-error]").forEach((el) => { el.textContent = ""; });
      $$("[data-row] input").forEach((i) => i.classList.remove("is-invalid"));
      button.disabled = true;
      try {
        if (button.dataset.bulkSave === "assign") await api("POST", "/api/v1/backorder-products/bulk-assign", { items });
        else await api("PATCH", "/api/v1/backorder-products", { items });
        toast(items.length + " product(s) saved", "success");
        location.href = button.dataset.back === "/admin/products" ? "/admin/backorder-products" : button.dataset.back;
      } catch (err) {
        ((err.details && err.details.errors) || []).forEach((e) => {
          const row = rows[e.item];
          if (!row) return;
          $("[data-row-error]", row).textContent = (e.field || "") + " " + String(e.reason || "").replace(/_/g, " ");
          const input = $('[name="' + e.field + '"]', row);
          if (input) input.classList.add("is-invalid");
        });
        toast(describe(err, names), "error");
      } finally { button.disabled = false; }
    });
  }

  /* ---------- import ---------- */
  const importForm = $("#import-form");
  if (importForm) {
    const fileInput = $("#import-file");
    const preview = $("[data-preview]");
    const apply = $("[data-apply]");
    const reset = $("[data-reset]");
    const result = $("[data-result]");
    const progress = $("[data-progress]");
    const fill = $("[data-progress-fill]");
    const label = $("[data-progress-label]");
    const dropzone = $("[data-dropzone]");
    const setStep = (n) => $$("[data-step]").forEach((s) => {
      const k = Number(s.dataset.step);
      s.classList.toggle("is-active", k === n);
      s.classList.toggle("is-done", k < n);
    });
    const mode = () => importForm.querySelector('[name="mode"]:checked').value;
    importForm.addEventListener("change", (ev) => {
      if (ev.target.name === "mode") { $("[data-overwrite]").hidden = mode() !== "update"; apply.hidden = true; setStep(1); }
      if (ev.target === fileInput) {
        $("[data-file-name]").textContent = fileInput.files.length ? fileInput.files[0].name : "Choose a CSV file or drop it here";
        preview.disabled = !fileInput.files.length;
        apply.hidden = true;
        setStep(1);
      }
    });
    ["dragover", "dragenter"].forEach((t) => dropzone.addEventListener(t, (e) => { e.preventDefault(); dropzone.classList.add("is-over"); }));
    ["dragleave", "drop"].forEach((t) => dropzone.addEventListener(t, () => dropzone.classList.remove("is-over")));
    dropzone.addEventListener("drop", (e) => {
      e.preventDefault();
      fileInput.files = e.dataTransfer.files;
      fileInput.dispatchEvent(new Event("change", { bubbles: true }));
    });

    function upload(dryRun) {
      const data = new FormData();
      data.append("file", fileInput.files[0]);
      data.append("mode", mode());
      data.append("dry_run", dryRun ? "true" : "false");
      const overwrite = $$('[name="overwrite"]:checked', importForm).map((c) => c.value);
      if (mode() === "update") data.append("overwrite", overwrite.join(","));
      data.append("csrf_token", csrf());
      return new Promise((resolve, reject) => {
        const xhr = new XMLHttpRequest();
        xhr.open("POST", "/api/v1/imports");
        xhr.setRequestHeader("X-CSRF-Token", csrf());
        xhr.setRequestHeader("Accept", "application/json");
        xhr.upload.onprogress = (e) => {
          if (e.lengthComputable) { fill.style.width = Math.round((e.loaded / e.total) * 100) + "%"; label.textContent = "Uploading… " + Math.round((e.loaded / e.total) * 100) + "%"; }
        };
        xhr.upload.onload = () => { progress.classList.add("is-indeterminate"); label.textContent = dryRun ? "Checking every row…" : "Applying…"; };
        xhr.onload = () => {
          let body = null;
          try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
          if (body && body.data) resolve(body.data);
          else reject(new ApiError(body, xhr.status));
        };
        xhr.onerror = () => reject(new ApiError(null, 0));
        xhr.send(data);
      });
    }
    async function poll(job) {
      while (!job.done) {
        label.textContent = (job.status === "applying" ? "Applying… " : "Checking rows… ") + job.processed.toLocaleString() + " rows read";
        await new Promise((r) => setTimeout(r, 700));
        job = (await api("GET", "/api/v1/imports/" + job.id)).body.data;
      }
      return job;
    }
    function showJob(job) {
      result.replaceChildren();
      const alert = document.createElement("div");
      const ok = job.status === "validated" || job.status === "completed";
      alert.className = "alert alert--" + (ok ? "success" : "danger");
      const title = document.createElement("strong");
      title.textContent = ok ? (job.status === "validated" ? "Ready to apply" : "Import applied") : "Nothing was applied";
      alert.append(title, document.createTextNode(job.message || ""));
      result.appendChild(alert);
      const stats = document.createElement("div");
      stats.className = "stat-row";
      [["Rows", job.rows], ["Problems", job.error_count], [job.status === "completed" ? "Applied" : "Will apply", job.status === "completed" ? job.applied : (ok ? job.rows : 0)]]
        .forEach(([k, v]) => { const s = document.createElement("div"); s.className = "stat"; const sm = document.createElement("small"); sm.textContent = k; const st = document.createElement("strong"); st.textContent = String(v); s.append(sm, st); stats.appendChild(s); });
      result.appendChild(stats);
      if (job.errors.length) {
        const link = document.createElement("a");
        link.className = "btn btn--small";
        link.href = "/api/v1/imports/" + job.id + "/errors.csv";
        link.textContent = "Download error report";
        link.setAttribute("download", "");
        result.appendChild(link);
        const table = document.createElement("table");
        table.className = "data";
        table.setAttribute("data-import-errors", "");
        table.style.marginTop = "12px";
        const head = table.createTHead().insertRow();
        ["Row", "Column", "Problem"].forEach((h) => { const th = document.createElement("th"); th.textContent = h; head.appendChild(th); });
        const body = table.createTBody();
        job.errors.slice(0, 200).forEach((e) => {
          const tr = body.insertRow();
          [e.row || "—", e.column || "—", e.message].forEach((v) => { tr.insertCell().textContent = String(v); });
        });
        result.appendChild(table);
      }
    }
    async function run(dryRun) {
      preview.disabled = true; apply.disabled = true;
      progress.hidden = false; progress.classList.remove("is-indeterminate"); fill.style.width = "0";
      setStep(dryRun ? 2 : 3);
      try {
        let job = await upload(dryRun);
        job = await poll(job);
        showJob(job);
        apply.hidden = !(dryRun && job.status === "validated");
        reset.hidden = false;
        if (job.status === "completed") { setStep(4); toast(job.message, "success"); }
        if (job.status === "failed") setStep(2);
      } catch (err) {
        result.replaceChildren();
        const alert = document.createElement("div");
        alert.className = "alert alert--danger";
        alert.textContent = describe(err);
        result.appendChild(alert);
      } finally {
        progress.hidden = true; preview.disabled = !fileInput.files.length; apply.disabled = false;
      }
    }
    importForm.addEventListener("submit", (ev) => { ev.preventDefault(); run(true); });
    apply.addEventListener("click", () => run(false));
    reset.addEventListener("click", () => { location.href = "/admin/imports?mode=" + mode(); });
  }

  /* ---------- settings with live preview ---------- */
  const settingsForm = $("#settings-form");
  if (settingsForm) {
    let state = "backorder";
    const sample = { stock: 0, threshold: 20, salable_qty: 20, incoming_stock: 50, back_in_stock_date: "2026-12-24",
      added_qty: 3, backordered_qty: 2, in_stock_qty: 1, requested_qty: 25, in_cart_qty: 0 };
    const stateSample = { in_stock: { stock: 42, salable_qty: 62 }, low_stock: { stock: 3, salable_qty: 23 },
      backorder: { stock: 0, salable_qty: 20 }, sold_out: { stock: -20, salable_qty: 0 } };
    const value = (name) => { const el = settingsForm.querySelector('[name="' + name + '"]'); return el ? el.value : ""; };
    function formatDate(iso) {
      const d = new Date(iso + "T00:00:00");
      const fmt = value("date_format");
      if (fmt === "long") return d.toLocaleDateString("en-US", { month: "long", day: "numeric", year: "numeric" });
      if (fmt === "long_day_first") return d.toLocaleDateString("en-GB", { day: "numeric", month: "long", year: "numeric" });
      return iso;
    }
    function fill(template) {
      const values = { ...sample, ...stateSample[state] };
      values.back_in_stock_date = formatDate(values.back_in_stock_date);
      return String(template || "").replace(/\{(\w+)\}/g, (m, k) => (k in values ? String(values[k]) : m));
    }
    function refreshPreview() {
      const messages = { in_stock: value("in_stock_message"), low_stock: value("low_stock_message"),
        backorder: value("backorder_message"), sold_out: value("sold_out_message") };
      $("[data-preview-msg]").textContent = fill(messages[state]);
      $("[data-preview-ship]").textContent = state === "backorder" ? fill(value("shipping_message")) : "";
      const btn = $("[data-preview-btn]");
      btn.disabled = state === "sold_out";
      if (state === "backorder") {
        btn.textContent = value("backorder_button_text") || "Add to cart";
        btn.style.background = value("backorder_button_color") || "#3C64F4";
        btn.style.color = value("backorder_button_text_color") || "#FFFFFF";
      } else if (state === "sold_out") {
        btn.textContent = value("sold_out_button_text") || "Sold out";
        btn.style.background = "#C9CCD6"; btn.style.color = "#FFFFFF";
      } else { btn.textContent = "Add to cart"; btn.style.background = "#313440"; btn.style.color = "#FFFFFF"; }
      $("[data-preview-mixed]").textContent = fill(value("mixed_cart_alert"));
      $("[data-preview-cart]").textContent = fill(value("cart_message"));
    }
    function refreshVersions() {
      const theme = $("#set-theme_id");
      const version = $("#set-theme_version");
      if (!theme || !theme.selectedOptions.length) return;
      const versions = JSON.parse(theme.selectedOptions[0].dataset.versions || "[]");
      const current = version.value || version.dataset.current;
      version.replaceChildren();
      const newest = document.createElement("option"); newest.value = ""; newest.textContent = "Newest"; version.appendChild(newest);
      versions.forEach((v) => { const o = document.createElement("option"); o.value = v; o.textContent = v; version.appendChild(o); });
      version.value = versions.includes(current) ? current : "";
    }
    $$("[data-color-for]").forEach((picker) => {
      const text = settingsForm.querySelector('[name="' + picker.dataset.colorFor + '"]');
      picker.addEventListener("input", () => { text.value = picker.value.toUpperCase(); refreshPreview(); });
      text.addEventListener("input", () => { if (/^#[0-9a-fA-F]{6}$/.test(text.value)) picker.value = text.value; });
    });
    $$(".preview__states button").forEach((b) => b.addEventListener("click", () => {
      state = b.dataset.state;
      $$(".preview__states button").forEach((x) => x.classList.toggle("is-active", x === b));
      refreshPreview();
    }));
    settingsForm.addEventListener("input", refreshPreview);
    settingsForm.addEventListener("change", (ev) => { if (ev.target.id === "set-theme_id") refreshVersions(); refreshPreview(); });
    refreshVersions();
    refreshPreview();

    function collect() {
      const body = {};
      $$("[data-setting]", settingsForm).forEach((el) => {
        if (el.type === "checkbox") body[el.name] = el.checked;
        else if (el.name === "low_stock_level") body[el.name] = intOrNull(el.value) ?? 0;
        else if (el.name === "allowed_origins") body[el.name] = el.value.split(/\s+/).filter(Boolean);
        else body[el.name] = el.value;
      });
      const inventory = { low_stock_level: body.low_stock_level };
      $$("[data-inventory-setting]", settingsForm).forEach((el) => { inventory[el.name] = el.type === "checkbox" ? el.checked : el.value; });
      return { body, inventory };
    }
    async function save(reset) {
      $$("[data-error-for]").forEach((el) => { el.textContent = ""; });
      $$("#settings-form .is-invalid").forEach((el) => el.classList.remove("is-invalid"));
      try {
        const { body, inventory } = collect();
        if (reset) await api("PUT", "/api/v1/settings/storefront", { reset_to_defaults: true });
        else {
          await api("PUT", "/api/v1/settings/storefront", body);
          await api("PUT", "/api/v1/settings/inventory", inventory);
        }
        toast(reset ? "Default texts restored" : "Settings saved", "success");
        if (reset) location.reload();
      } catch (err) {
        ((err.details && err.details.errors) || []).forEach((e) => {
          const slot = $('[data-error-for="' + e.field + '"]');
          if (slot) slot.textContent = String(e.reason || "").replace(/_/g, " ") + (e.max_length ? " (max " + e.max_length + ")" : "") + (e.placeholder ? " " + e.placeholder : "");
          const input = settingsForm.querySelector('[name="' + e.field + '"]');
          if (input) input.classList.add("is-invalid");
        });
        toast(describe(err), "error");
      }
    }
    $("[data-settings-save]").addEventListener("click", () => save(false));
    $("[data-settings-reset]").addEventListener("click", () => { if (confirm("Restore every storefront text and colour to its default?")) save(true); });
  }

  /* ---------- plans ---------- */
  const planDialog = $("#plan-dialog");
  if (planDialog) {
    let target = null;
    document.addEventListener("click", async (ev) => {
      const button = ev.target.closest("[data-plan]");
      if (!button) return;
      target = button.dataset.plan;
      $("[data-plan-error]").textContent = "";
      try {
        const quote = (await api("GET", "/api/v1/billing/quote?plan=" + encodeURIComponent(target))).body.data;
        const when = quote.effective_at ? quote.effective_at.slice(0, 10) : "";
        const planName = (code) => { const h = $('[data-plan-card="' + code + '"] h3'); return h ? h.textContent : code; };
        quote.to_plan = planName(quote.to_plan);
        quote.from_plan = planName(quote.from_plan);
        $("#plan-title").textContent = quote.kind === "upgrade" ? "Upgrade to " + quote.to_plan : (quote.kind === "downgrade" ? "Downgrade to " + quote.to_plan : "Keep your current plan");
        $("[data-plan-subtitle]").textContent = "From " + quote.from_plan + " to " + quote.to_plan;
        $("[data-quote-label]").textContent = quote.kind === "upgrade" ? "Prorated charge now" : "Charged now";
        $("[data-quote-amount]").textContent = quote.amount.formatted;
        $("[data-quote-when]").textContent = quote.kind === "upgrade" ? "Takes effect immediately" + (quote.days_in_cycle ? " · " + quote.days_charged + " of " + quote.days_in_cycle + " days left in this cycle" : "")
          : (quote.kind === "downgrade" ? "Takes effect on " + when + ", at the end of this billing cycle" : "The scheduled downgrade is cancelled");
        $("[data-quote-explanation]").textContent = quote.explanation;
        $("[data-plan-confirm]").textContent = quote.kind === "upgrade" ? "Upgrade and pay " + quote.amount.formatted : "Confirm";
        planDialog.showModal();
      } catch (err) { toast(describe(err), "error"); }
    });
    planDialog.querySelector("form").addEventListener("submit", async (ev) => {
      if (ev.submitter && ev.submitter.value === "cancel") return;
      ev.preventDefault();
      try {
        const sub = (await api("PUT", "/api/v1/billing/subscription", { plan: target })).body.data;
        planDialog.close();
        if (sub.change && sub.change.charge && sub.change.charge.checkout_url) { window.top.location.href = sub.change.charge.checkout_url; return; }
        toast(sub.change && sub.change.kind === "downgrade" ? "Downgrade scheduled" : "Plan changed to " + sub.plan.name, "success");
        setTimeout(() => location.reload(), 600);
      } catch (err) { $("[data-plan-error]").textContent = describe(err); }
    });
  }

  /* ---------- API tokens ---------- */
  const tokenForm = $("#token-form");
  if (tokenForm) {
    tokenForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      $('[data-error-for="name"]').textContent = "";
      try {
        const token = (await api("POST", "/api/v1/tokens", { name: tokenForm.name.value })).body.data;
        $("[data-token-value]").textContent = token.token;
        $("[data-token-created]").hidden = false;
        tokenForm.reset();
      } catch (err) { $('[data-error-for="name"]').textContent = describe(err); }
    });
    document.addEventListener("click", async (ev) => {
      const button = ev.target.closest("[data-revoke]");
      if (!button || !confirm("Revoke the token " + button.dataset.name + "? Scripts using it stop working.")) return;
      try {
        await api("DELETE", "/api/v1/tokens/" + encodeURIComponent(button.dataset.revoke));
        toast("Token revoked", "success");
        location.reload();
      } catch (err) { toast(describe(err), "error"); }
    });
  }
})();
