// Draws every chart of the page from its figure JSON (a data block, not inline script: the CSP
// allows scripts from this origin only). Each drawn container is marked data-drawn="true".
(function () {
  "use strict";
  function draw() {
    document.querySelectorAll("[data-figure]").forEach(function (container) {
      var source = document.getElementById(container.getAttribute("data-figure"));
      if (!source) { return; }
      var figure = JSON.parse(source.textContent);
      window.Plotly.newPlot(container, figure.data || [], figure.layout || {}, {
        responsive: true, displaylogo: false
      }).then(function () { container.setAttribute("data-drawn", "true"); });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
