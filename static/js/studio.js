/* Studio seller pages: small, local behaviours on top of server-rendered HTML and htmx.
 * Every component starts from a data-* attribute and is (re)initialised by htmx.onLoad, so it
 * also works inside fragments htmx swaps in. Without JavaScript every form still submits. */
(function () {
  "use strict";

  function onLoad(root) {
    each(root, "[data-upload-form]", initUploadForm);
    each(root, "[data-mask-editor]", initMaskEditor);
    each(root, "[data-face-picker]", initFacePicker);
    each(root, "[data-face-grid]", syncFacePicker);
    each(root, "[data-compare]", initCompare);
  }

  function each(root, selector, fn) {
    if (root.matches && root.matches(selector)) fn(root);
    root.querySelectorAll(selector).forEach(fn);
  }

  function once(el, key) {
    if (el.dataset[key]) return false;
    el.dataset[key] = "1";
    return true;
  }

  // --- new shoot: drag and drop, previews, client-side checks, upload progress -------------

  var ACCEPTED = ["image/jpeg", "image/png", "image/webp"];
  var keptFiles = []; // survives the form being swapped after a server-side error

  function initUploadForm(form) {
    if (!once(form, "ready")) return;
    var zone = form.querySelector("[data-dropzone]");
    var input = zone.querySelector("input[type=file]");
    var list = form.querySelector("[data-previews]");
    var maxBytes = parseInt(zone.dataset.maxBytes, 10);
    var maxFiles = parseInt(zone.dataset.maxFiles, 10);
    var files = keptFiles.slice();

    zone.classList.add("is-enhanced");
    form.querySelectorAll("[data-js-only]").forEach(function (el) { el.hidden = false; });
    input.tabIndex = -1;
    zone.querySelector("[data-pick]").addEventListener("click", function () { input.click(); });

    var refused = {}; // file name -> the server's reason, from the last response
    form.querySelectorAll("#photos-errors li").forEach(function (li) {
      var text = li.textContent;
      var cut = text.indexOf(": ");
      if (cut > 0) refused[text.slice(0, cut)] = text.slice(cut + 2);
    });

    function problem(file) {
      if (refused[file.name]) return refused[file.name];
      if (ACCEPTED.indexOf(file.type) === -1 && !/\.(jpe?g|png|webp)$/i.test(file.name)) {
        return "Not a JPEG, PNG or WebP image.";
      }
      if (file.size === 0) return "The file is empty.";
      if (file.size > maxBytes) {
        return "Too large: " + (file.size / 1048576).toFixed(1) + " MB (limit " + Math.round(maxBytes / 1048576) + " MB).";
      }
      return "";
    }

    function render() {
      var good = files.filter(function (f) { return !problem(f); });
      var transfer = new DataTransfer();
      good.slice(0, maxFiles).forEach(function (f) { transfer.items.add(f); });
      input.files = transfer.files;
      keptFiles = files.slice();
      list.textContent = "";
      files.forEach(function (file, index) {
        var why = problem(file) || (good.indexOf(file) >= maxFiles ? "Only " + maxFiles + " photos per shoot." : "");
        var li = document.createElement("li");
        li.className = "preview" + (why ? " preview--bad" : "");
        if (!why) {
          var img = document.createElement("img");
          img.alt = "";
          img.src = URL.createObjectURL(file);
          img.onload = function () { URL.revokeObjectURL(img.src); };
          li.appendChild(img);
        }
        var name = document.createElement("div");
        name.className = "preview__name";
        name.textContent = file.name;
        li.appendChild(name);
        if (why) {
          var err = document.createElement("div");
          err.className = "preview__error";
          err.setAttribute("role", "alert");
          err.textContent = why + " It will not be uploaded.";
          li.appendChild(err);
        }
        var remove = document.createElement("button");
        remove.type = "button";
        remove.className = "preview__remove";
        remove.setAttribute("aria-label", "Remove " + file.name);
        remove.textContent = "×";
        remove.addEventListener("click", function () { files.splice(index, 1); render(); });
        li.appendChild(remove);
        list.appendChild(li);
      });
    }

    function add(fileList) {
      Array.prototype.forEach.call(fileList, function (f) { files.push(f); });
      render();
    }

    input.addEventListener("change", function () {
      var picked = Array.prototype.slice.call(input.files);
      add(picked);
    });
    ["dragenter", "dragover"].forEach(function (type) {
      zone.addEventListener(type, function (e) { e.preventDefault(); zone.classList.add("is-over"); });
    });
    ["dragleave", "dragend"].forEach(function (type) {
      zone.addEventListener(type, function () { zone.classList.remove("is-over"); });
    });
    zone.addEventListener("drop", function (e) {
      e.preventDefault();
      zone.classList.remove("is-over");
      if (e.dataTransfer && e.dataTransfer.files) add(e.dataTransfer.files);
    });

    var progress = form.querySelector("[data-progress]");
    var bar = form.querySelector("[data-progress-bar]");
    var text = form.querySelector("[data-progress-text]");
    var state = form.querySelector("[data-progress-state]");
    form.addEventListener("htmx:beforeRequest", function () {
      progress.hidden = false;
      bar.value = 0;
      text.textContent = "0%";
      state.textContent = "Uploading…";
    });
    form.addEventListener("htmx:xhr:progress", function (e) {
      if (!e.detail.lengthComputable || !e.detail.total) return;
      var pct = Math.round((100 * e.detail.loaded) / e.detail.total);
      bar.value = pct;
      text.textContent = pct + "%";
      if (pct >= 100) state.textContent = "Checking your photos…";
    });
    form.addEventListener("htmx:afterRequest", function (e) {
      if (!e.detail.successful) state.textContent = "Upload failed. Please try again.";
    });
    render();
  }

  // --- mask review: opacity, pose toggle, include/exclude brush ------------------------------

  var editorState = {}; // per photo: opacity, pose, tool, brush survive the panel being swapped

  function initMaskEditor(section) {
    if (!once(section, "ready")) return;
    var stage = section.querySelector("[data-stage]");
    if (!stage) return;
    var saved = editorState[section.id] || (editorState[section.id] = {});
    var opacity = section.querySelector("[data-opacity]");
    function applyOpacity() {
      saved.opacity = opacity.value;
      stage.style.setProperty("--mask-opacity", String(opacity.value / 100));
    }
    if (saved.opacity !== undefined) opacity.value = saved.opacity;
    opacity.addEventListener("input", applyOpacity);
    applyOpacity();
    var pose = section.querySelector("[data-pose]");
    var toggle = section.querySelector("[data-pose-toggle]");
    if (pose && toggle) {
      var showPose = function () { saved.pose = toggle.checked; pose.hidden = !toggle.checked; };
      if (saved.pose !== undefined) toggle.checked = saved.pose;
      toggle.addEventListener("change", showPose);
      showPose();
    }

    var canvas = section.querySelector("[data-canvas]");
    var form = section.querySelector("[data-correct-form]");
    if (!canvas || !form) return;
    var ctx = canvas.getContext("2d");
    var brush = form.querySelector("[data-brush]");
    var undo = form.querySelector("[data-undo]");
    var clear = form.querySelector("[data-clear]");
    var apply = form.querySelector("[data-apply]");
    var count = form.querySelector("[data-stroke-count]");
    if (saved.brush !== undefined) brush.value = saved.brush;
    if (saved.tool) {
      var radio = form.querySelector("[data-tool][value=" + saved.tool + "]");
      if (radio) radio.checked = true;
    }
    form.addEventListener("change", function (e) {
      if (e.target.matches("[data-tool]")) saved.tool = e.target.value;
    });
    var strokes = []; // {tool: "include"|"exclude", points: [[x, y], ...]}
    var current = null;
    var cursor = { x: canvas.width / 2, y: canvas.height / 2, visible: false };
    var COLORS = { include: "rgba(34, 197, 94, 0.75)", exclude: "rgba(239, 68, 68, 0.75)" };

    function tool() {
      var checked = form.querySelector("[data-tool]:checked");
      return checked ? checked.value : "include";
    }
    function radius() { return parseInt(brush.value, 10); }

    function draw() {
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      ctx.lineCap = "round";
      ctx.lineJoin = "round";
      strokes.concat(current ? [current] : []).forEach(function (s) {
        ctx.strokeStyle = COLORS[s.tool];
        ctx.fillStyle = COLORS[s.tool];
        ctx.lineWidth = radius() * 2;
        if (s.points.length === 1) {
          ctx.beginPath();
          ctx.arc(s.points[0][0], s.points[0][1], radius(), 0, 2 * Math.PI);
          ctx.fill();
          return;
        }
        ctx.beginPath();
        s.points.forEach(function (p, i) { if (i === 0) ctx.moveTo(p[0], p[1]); else ctx.lineTo(p[0], p[1]); });
        ctx.stroke();
      });
      if (cursor.visible) {
        ctx.lineWidth = Math.max(2, canvas.width / 300);
        ctx.strokeStyle = "#ffffff";
        ctx.beginPath();
        ctx.arc(cursor.x, cursor.y, radius(), 0, 2 * Math.PI);
        ctx.stroke();
        ctx.strokeStyle = "#111111";
        ctx.setLineDash([6, 6]);
        ctx.stroke();
        ctx.setLineDash([]);
      }
    }

    function sync() {
      var include = strokes.filter(function (s) { return s.tool === "include"; }).map(function (s) { return s.points; });
      var exclude = strokes.filter(function (s) { return s.tool === "exclude"; }).map(function (s) { return s.points; });
      form.querySelector("[data-include]").value = include.length ? JSON.stringify(include) : "";
      form.querySelector("[data-exclude]").value = exclude.length ? JSON.stringify(exclude) : "";
      undo.disabled = clear.disabled = apply.disabled = strokes.length === 0;
      count.textContent = strokes.length
        ? include.length + " keep, " + exclude.length + " remove stroke" + (strokes.length === 1 ? "" : "s") + " ready"
        : "";
      draw();
    }

    function point(e) {
      var rect = canvas.getBoundingClientRect();
      var x = ((e.clientX - rect.left) * canvas.width) / rect.width;
      var y = ((e.clientY - rect.top) * canvas.height) / rect.height;
      return [Math.round(Math.min(Math.max(x, 0), canvas.width - 1)), Math.round(Math.min(Math.max(y, 0), canvas.height - 1))];
    }

    canvas.addEventListener("pointerdown", function (e) {
      if (e.button !== 0) return;
      canvas.setPointerCapture(e.pointerId);
      cursor.visible = false;
      current = { tool: tool(), points: [point(e)] };
      draw();
    });
    canvas.addEventListener("pointermove", function (e) {
      if (!current) return;
      var p = point(e);
      var last = current.points[current.points.length - 1];
      var step = Math.max(1, radius() / 3);
      if (Math.abs(p[0] - last[0]) + Math.abs(p[1] - last[1]) >= step) {
        current.points.push(p);
        draw();
      }
    });
    function finish() {
      if (!current) return;
      strokes.push(current);
      current = null;
      sync();
    }
    canvas.addEventListener("pointerup", finish);
    canvas.addEventListener("pointercancel", finish);

    // Keyboard painting: arrows move a brush outline, Space or Enter paints a dot.
    canvas.addEventListener("focus", function () { cursor.visible = true; draw(); });
    canvas.addEventListener("blur", function () { cursor.visible = false; draw(); });
    canvas.addEventListener("keydown", function (e) {
      var step = (e.shiftKey ? 0.05 : 0.01) * Math.max(canvas.width, canvas.height);
      var moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
      if (moves[e.key]) {
        e.preventDefault();
        cursor.x = Math.min(Math.max(cursor.x + moves[e.key][0], 0), canvas.width - 1);
        cursor.y = Math.min(Math.max(cursor.y + moves[e.key][1], 0), canvas.height - 1);
        cursor.visible = true;
        draw();
      } else if (e.key === " " || e.key === "Enter") {
        e.preventDefault();
        strokes.push({ tool: tool(), points: [[Math.round(cursor.x), Math.round(cursor.y)]] });
        sync();
      }
    });

    brush.addEventListener("input", function () { saved.brush = brush.value; draw(); });
    undo.addEventListener("click", function () { strokes.pop(); sync(); });
    clear.addEventListener("click", function () { strokes = []; sync(); });
    sync();
  }

  // --- face selection: selection across filter changes, count, estimate ----------------------

  var picked = new Map(); // face id -> code; kept while the gallery is filtered or paged

  function initFacePicker(form) {
    if (!once(form, "ready")) return;
    document.querySelectorAll("input[name=faces][form=" + form.id + "]:checked").forEach(function (box) {
      picked.set(box.value, box.dataset.faceCode);
    });
    document.addEventListener("change", function (e) {
      var box = e.target;
      if (box.name === "faces" && box.getAttribute("form") === form.id) {
        if (box.checked) picked.set(box.value, box.dataset.faceCode);
        else picked.delete(box.value);
        syncFacePicker();
      } else if (box.matches("[data-variants]")) {
        syncFacePicker();
      }
    });
    syncFacePicker();
  }

  function syncFacePicker() {
    var form = document.querySelector("[data-face-picker]");
    if (!form) return;
    var tray = form.querySelector("[data-face-tray]");
    var visible = {};
    document.querySelectorAll("input[name=faces][form=" + form.id + "]").forEach(function (box) {
      visible[box.value] = true;
      box.checked = picked.has(box.value);
    });
    // Faces filtered out of view are still selected: keep them as hidden inputs.
    tray.textContent = "";
    picked.forEach(function (code, id) {
      if (visible[id]) return;
      var hidden = document.createElement("input");
      hidden.type = "hidden";
      hidden.name = "faces";
      hidden.value = id;
      tray.appendChild(hidden);
    });
    var variants = document.querySelector("[data-variants]");
    var perFace = variants ? parseInt(variants.value, 10) : 1;
    var images = picked.size * perFace;
    var seconds = images * parseFloat(form.dataset.secondsPerImage || "0");
    var cost = images * parseFloat(form.dataset.costPerImage || "0");
    setText("[data-selected-count]", String(picked.size));
    setText("[data-image-count]", String(images));
    setText("[data-time]", duration(seconds));
    setText("[data-cost]", cost > 0 ? "≈ " + form.dataset.currency + cost.toFixed(2) : "");
    var button = document.querySelector("[data-generate]");
    if (button && !button.hasAttribute("data-locked")) button.disabled = picked.size === 0;
  }

  function setText(selector, text) {
    var el = document.querySelector(selector);
    if (el) el.textContent = text;
  }

  function duration(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60) return "about " + Math.max(seconds, 1) + " s";
    var minutes = Math.round(seconds / 60);
    if (minutes < 60) return "about " + minutes + " min";
    return "about " + Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  // --- results: before/after slider -----------------------------------------------------------

  function initCompare(box) {
    if (!once(box, "ready")) return;
    var range = document.querySelector("[data-compare-range]");
    if (!range) return;
    function set(value) {
      value = Math.min(Math.max(value, 0), 100);
      range.value = value;
      box.style.setProperty("--pos", value + "%");
      range.setAttribute("aria-valuetext", Math.round(value) + "% original");
    }
    range.addEventListener("input", function () { set(parseFloat(range.value)); });
    var dragging = false;
    function fromPointer(e) {
      var rect = box.getBoundingClientRect();
      set((100 * (e.clientX - rect.left)) / rect.width);
    }
    box.addEventListener("pointerdown", function (e) { dragging = true; box.setPointerCapture(e.pointerId); fromPointer(e); });
    box.addEventListener("pointermove", function (e) { if (dragging) fromPointer(e); });
    box.addEventListener("pointerup", function () { dragging = false; });
    set(parseFloat(range.value));
  }

  if (window.htmx) {
    htmx.onLoad(onLoad);
  } else {
    document.addEventListener("DOMContentLoaded", function () { onLoad(document.body); });
  }
})();
