/*! Backorder storefront script. Plain JS, no framework, no build step.
 *
 * Registered through BigCommerce's Scripts API as
 *   <gateway>/storefront/v1/backorder.js?store=<store_hash>
 * It learns the API base and the store from its own src. On a product page it shows the
 * inventory and shipping descriptions of an assigned product and restyles the add-to-cart
 * button; on add-to-cart it asks the API whether the quantity goes on backorder (mixed-cart
 * alert, confirmed by a second click) or over the salable quantity (blocked). On the cart
 * page it shows the cart message on backordered lines.
 *
 * Every merchant text is inserted with textContent, never as HTML. Anything that fails
 * (API down, slow, unknown product, unexpected markup) leaves the page as the theme made it.
 */
(function () {
  'use strict';
  if (window.__backorderStorefront) { return; }
  window.__backorderStorefront = true;

  var TIMEOUT_MS = 4000;
  var CLASS = 'backorder';

  function ownScript() {
    if (document.currentScript && document.currentScript.src) { return document.currentScript; }
    var scripts = document.getElementsByTagName('script');
    for (var i = scripts.length - 1; i >= 0; i--) {
      if (/\/storefront\/v1\/backorder\.js(\?|$)/.test(scripts[i].src || '')) { return scripts[i]; }
    }
    return null;
  }

  var script = ownScript();
  if (!script || !window.fetch || !window.URL) { return; }
  var src = new URL(script.src, window.location.href);
  var storeHash = src.searchParams.get('store') || '';
  if (!/^[a-z0-9]{1,32}$/.test(storeHash)) { return; }
  var apiBase = src.origin + src.pathname.replace(/\/backorder\.js$/, '') + '/stores/' + storeHash;
  // Stores served under a path prefix (the sandbox: /s/<hash>) expose it as stencilBootstrap.basePath.
  var boot = window.stencilBootstrap;
  var storeBase = (boot && typeof boot === 'object' && typeof boot.basePath === 'string') ? boot.basePath : '';

  // ------------------------------------------------------------------ helpers

  function request(url, options) {
    var controller = window.AbortController ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, TIMEOUT_MS) : null;
    var init = options || {};
    if (controller) { init.signal = controller.signal; }
    return fetch(url, init).then(function (response) {
      if (timer) { clearTimeout(timer); }
      if (!response.ok) { return null; }
      return response.json();
    }).catch(function () {
      if (timer) { clearTimeout(timer); }
      return null;
    });
  }

  function api(path, body) {
    var options = { method: body ? 'POST' : 'GET', credentials: 'omit', mode: 'cors' };
    if (body) {
      // text/plain keeps this a simple CORS request (no preflight); the API reads JSON anyway.
      options.headers = { 'Content-Type': 'text/plain' };
      options.body = JSON.stringify(body);
    }
    return request(apiBase + path, options);
  }

  // Split a selector list on top-level commas, so alternatives are tried in order.
  function alternatives(list) {
    var parts = [], depth = 0, quote = '', start = 0;
    for (var i = 0; i < list.length; i++) {
      var c = list.charAt(i);
      if (quote) { if (c === quote) { quote = ''; } continue; }
      if (c === '"' || c === "'") { quote = c; } else if (c === '(' || c === '[') { depth++; }
      else if (c === ')' || c === ']') { depth--; } else if (c === ',' && depth === 0) {
        parts.push(list.slice(start, i)); start = i + 1;
      }
    }
    parts.push(list.slice(start));
    return parts.map(function (p) { return p.trim(); }).filter(Boolean);
  }

  function find(root, list) {
    if (!root || !list) { return null; }
    var options = alternatives(list);
    for (var i = 0; i < options.length; i++) {
      try {
        var found = root.querySelector(options[i]);
        if (found) { return found; }
      } catch (e) { /* a selector this browser does not know: try the next */ }
    }
    return null;
  }

  function findAll(root, list) {
    try { return Array.prototype.slice.call(root.querySelectorAll(list)); } catch (e) { return []; }
  }

  function element(tag, className, text, attribute) {
    var node = document.createElement(tag);
    node.className = className;
    if (attribute) { node.setAttribute(attribute, ''); }
    if (text) { node.textContent = text; }
    return node;
  }

  function insertAfter(anchor, node) {
    if (anchor && anchor.parentNode) { anchor.parentNode.insertBefore(node, anchor.nextSibling); return true; }
    return false;
  }

  function validColor(value) { return /^#[0-9A-Fa-f]{6}$/.test(value || ''); }

  function addStyles() {
    if (document.getElementById('backorder-styles')) { return; }
    var style = document.createElement('style');
    style.id = 'backorder-styles';
    style.textContent =
      '.backorder-messages{margin:.75rem 0;line-height:1.4}' +
      '.backorder-inventory{font-weight:600;margin:0 0 .25rem}' +
      '.backorder-shipping{margin:0;color:#555}' +
      '.backorder-alert{margin:.75rem 0;padding:.6rem .8rem;border-radius:4px;border:1px solid #d8a657;' +
      'background:#fff8e6;color:#4a3500}' +
      '.backorder-alert--error{border-color:#c0392b;background:#fdecea;color:#7f1d1d}' +
      '.backorder-alert-confirm{margin-left:.5rem}' +
      '.backorder-cart-message{margin:.35rem 0 0;font-size:.9em;color:#7c2d12}' +
      '.backorder-cart-alert{margin:.35rem 0 0;font-size:.9em;color:#b91c1c}';
    (document.head || document.documentElement).appendChild(style);
  }

  function productIdFromPage(selectors) {
    var data = window.BCData || {};
    var candidates = [data.product_id, data.productId, data.product_attributes && data.product_attributes.product_id];
    for (var i = 0; i < candidates.length; i++) {
      if (/^[1-9][0-9]{0,15}$/.test(String(candidates[i] || ''))) { return String(candidates[i]); }
    }
    var input = find(document, selectors ? selectors.product_id_input : 'input[name="product_id"]');
    var value = input ? (input.value || input.getAttribute('data-product-id') || '') : '';
    return /^[1-9][0-9]{0,15}$/.test(value) ? value : '';
  }

  function cartQuantity(productId) {
    return request(storeBase + '/api/storefront/carts', { credentials: 'same-origin' }).then(function (carts) {
      var total = 0;
      (carts || []).forEach(function (cart) {
        var items = (cart.lineItems && cart.lineItems.physicalItems) || [];
        items.concat((cart.lineItems && cart.lineItems.digitalItems) || []).forEach(function (item) {
          if (String(item.productId) === String(productId)) { total += Number(item.quantity) || 0; }
        });
      });
      return total;
    });
  }

  // ------------------------------------------------------------------ product page

  function setButtonText(button, text) {
    if (!text) { return; }
    if (button.tagName === 'INPUT') { button.value = text; } else { button.textContent = text; }
  }

  function showAlert(form, button, text, isError, confirmLabel, onConfirm) {
    var old = document.querySelector('[data-backorder-alert]');
    if (old && old.parentNode) { old.parentNode.removeChild(old); }
    if (!text) { return; }
    var box = element('div', CLASS + '-alert' + (isError ? ' ' + CLASS + '-alert--error' : ''), '',
                      'data-backorder-alert');
    box.setAttribute('role', isError ? 'alert' : 'status');
    box.appendChild(element('span', CLASS + '-alert-text', text));
    if (confirmLabel) {
      var confirm = element('button', 'button ' + CLASS + '-alert-confirm', confirmLabel, 'data-backorder-confirm');
      confirm.type = 'button';
      confirm.addEventListener('click', onConfirm);
      box.appendChild(confirm);
    }
    var container = (button && button.parentNode && button.parentNode.parentNode) || form;
    if (button && container.contains(button)) {
      var holder = button.parentNode;
      holder.parentNode.insertBefore(box, holder);
    } else {
      form.appendChild(box);
    }
  }

  function productPage(selectors, view) {
    addStyles();
    var root = find(document, selectors.product_view) || document;
    var form = find(root, selectors.add_to_cart_form) || find(document, selectors.add_to_cart_form);
    var button = find(form || root, selectors.add_to_cart_button);
    var messages = view.messages || {};

    if (messages.inventory || messages.shipping) {
      var box = element('div', CLASS + '-messages', '', 'data-backorder-messages');
      box.setAttribute('data-backorder-status', view.status);
      if (messages.inventory) {
        box.appendChild(element('p', CLASS + '-inventory', messages.inventory, 'data-backorder-inventory'));
      }
      if (messages.shipping) {
        box.appendChild(element('p', CLASS + '-shipping', messages.shipping, 'data-backorder-shipping'));
      }
      var anchor = find(root, selectors.message_anchor);
      if (!insertAfter(anchor, box) && form) { form.insertBefore(box, form.firstChild); }
      var label = find(root, selectors.stock_label);
      if (label && label !== box) { label.style.display = 'none'; }
    }

    if (button) {
      setButtonText(button, messages.button_text);
      if (validColor(messages.button_color)) {
        button.style.backgroundColor = messages.button_color;
        button.style.borderColor = messages.button_color;
      }
      if (validColor(messages.button_text_color)) { button.style.color = messages.button_text_color; }
      if (view.status === 'sold_out') {
        button.disabled = true;
        button.setAttribute('aria-disabled', 'true');
        button.setAttribute('data-backorder-sold-out', '');
      }
    }
    if (!form) { return; }

    var confirmedQty = 0;
    var passing = false;
    form.setAttribute('data-backorder-ready', '');

    function submitForReal() {
      passing = true;
      try {
        if (form.requestSubmit) { form.requestSubmit(button && button.type === 'submit' ? button : undefined); }
        else { form.submit(); }
      } finally { passing = false; }
    }

    // Capture on document: runs before the theme's own submit handlers on the form.
    document.addEventListener('submit', function (event) {
      if (event.target !== form || passing) { return; }
      if (view.status === 'sold_out') {
        event.preventDefault();
        event.stopImmediatePropagation();
        showAlert(form, button, messages.inventory, true);
        return;
      }
      var input = find(form, selectors.quantity_input);
      var quantity = Math.max(1, parseInt(input ? input.value : '1', 10) || 1);
      if (confirmedQty && confirmedQty === quantity) { confirmedQty = 0; return; }
      event.preventDefault();
      event.stopImmediatePropagation();
      cartQuantity(view.product_id).then(function (inCart) {
        return api('/cart-check', { lines: [{ product_id: view.product_id, quantity: quantity,
                                              in_cart_qty: inCart || 0 }] });
      }).then(function (check) {
        if (!check) { submitForReal(); return; }
        if (check.over_threshold) {
          showAlert(form, button, check.over_threshold_alert, true);
          return;
        }
        if (check.mixed_cart_alert) {
          var label = button ? (button.tagName === 'INPUT' ? button.value : button.textContent) : '';
          showAlert(form, button, check.mixed_cart_alert, false, (label || '').trim() || 'OK', function () {
            confirmedQty = quantity;
            submitForReal();
          });
          return;
        }
        showAlert(form, button, '', false);
        submitForReal();
      }, function () { submitForReal(); });
    }, true);
  }

  // ------------------------------------------------------------------ cart page

  function cartPage(selectors, rows) {
    var lines = [], used = [];
    rows.forEach(function (row) {
      var carrier = row.hasAttribute('data-product-id') ? row : find(row, selectors.cart_line_product);
      var id = parseInt(carrier ? carrier.getAttribute('data-product-id') : '', 10);
      var qtyInput = find(row, 'input[data-cart-itemid], input[name^="qty"], input[name="quantity"]');
      var quantity = parseInt(qtyInput ? qtyInput.value : '1', 10) || 1;
      if (id > 0 && quantity > 0) { lines.push({ product_id: id, quantity: quantity }); used.push(row); }
    });
    if (!lines.length) { return; }
    api('/cart-check', { lines: lines }).then(function (check) {
      if (!check || !check.lines) { return; }
      addStyles();
      check.lines.forEach(function (line, index) {
        var row = used[index];
        if (!row) { return; }
        var anchor = find(row, selectors.cart_line_message_anchor) || row;
        if (line.cart_message) {
          anchor.appendChild(element('p', CLASS + '-cart-message', line.cart_message, 'data-backorder-cart-message'));
        }
        if (line.over_threshold && line.alert) {
          var alert = element('p', CLASS + '-cart-alert', line.alert, 'data-backorder-cart-alert');
          alert.setAttribute('role', 'alert');
          anchor.appendChild(alert);
        }
      });
    });
  }

  // ------------------------------------------------------------------ start

  function start() {
    var quickId = productIdFromPage(null);
    var settingsRequest = api('/settings');
    var viewRequest = quickId ? api('/products/' + quickId) : null;
    settingsRequest.then(function (settings) {
      if (!settings || !settings.selectors) { return; }
      var selectors = settings.selectors;
      var rows = findAll(document, selectors.cart_line);
      if (rows.length) { cartPage(selectors, rows); return; }
      var productId = quickId || productIdFromPage(selectors);
      if (!productId) { return; }
      (viewRequest || api('/products/' + productId)).then(function (view) {
        if (view && view.assigned) { productPage(selectors, view); }
      });
    }).catch(function () { /* leave the page alone */ });
  }

  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', start); } else { start(); }
})();
