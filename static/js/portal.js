// The portal's few behaviours. Every page works without this file; it only makes
// things quicker. No inline scripts anywhere (the Content-Security-Policy forbids them),
// so everything is wired here by event delegation, which also covers htmx swaps.
(function () {
  "use strict";

  // Lets the stylesheet swap no-JavaScript controls for their scripted twins.
  document.documentElement.classList.add("js");

  // Tenant switcher: switch as soon as another tenant is chosen.
  document.addEventListener("change", function (event) {
    var select = event.target.closest("form[data-autosubmit] select");
    if (select) select.form.submit();
  });

  function copyByCommand(text) {
    // For plain-http deployments and browsers without the Clipboard API.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } finally { document.body.removeChild(area); }
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { copyByCommand(text); });
    }
    copyByCommand(text);
    return Promise.resolve();
  }

  document.addEventListener("click", function (event) {
    // Copy buttons: data-copy-target="#id" of an input or element holding the text.
    var copy = event.target.closest("[data-copy-target]");
    if (copy) {
      event.preventDefault();
      var source = document.querySelector(copy.getAttribute("data-copy-target"));
      if (!source) return;
      var text = "value" in source && source.tagName !== "BUTTON" ? source.value : source.textContent;
      copyText(text.trim()).then(function () {
        var note = copy.parentNode.querySelector(".copied");
        if (note) { note.hidden = false; }
        copy.setAttribute("data-copied", "true");
      });
      return;
    }

    // Header editor: add a row from the <template>, renumbering the formset prefix.
    var add = event.target.closest("[data-add-row]");
    if (add) {
      var prefix = add.getAttribute("data-add-row");
      var total = document.getElementById("id_" + prefix + "-TOTAL_FORMS");
      var max = document.getElementById("id_" + prefix + "-MAX_NUM_FORMS");
      var template = document.getElementById(prefix + "-empty-row");
      var rows = document.getElementById(prefix + "-rows");
      if (!total || !template || !rows) return;
      var index = parseInt(total.value, 10);
      if (max && index >= parseInt(max.value, 10)) return;
      event.preventDefault();
      var html = template.innerHTML.replace(/__prefix__/g, String(index));
      rows.insertAdjacentHTML("beforeend", html);
      total.value = String(index + 1);
      var first = rows.lastElementChild && rows.lastElementChild.querySelector("input");
      if (first) first.focus();
      return;
    }

    // Header editor: remove a row by ticking its DELETE box and hiding it.
    var remove = event.target.closest("[data-remove-row]");
    if (remove) {
      var row = remove.closest(".header-row");
      if (!row) return;
      event.preventDefault();
      var box = row.querySelector("input[type=checkbox][name$='-DELETE']");
      if (box) { box.checked = true; }
      row.classList.add("removed");
    }
  });

  // Forms that need a second thought: data-confirm="question".
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
})();
