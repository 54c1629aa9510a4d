// Draws the report's figures: the JSON of #cc-figures holds {element id: {data, layout}}.
// Inlined in report.html after plotly.js; fetches nothing. When every chart is drawn, <html> gets
// data-charts="drawn" (the browser test waits for it), or data-charts="error" with the message.
(function () {
  "use strict";
  var root = document.documentElement;
  var config = {
    displaylogo: false,
    responsive: true,
    showLink: false,
    showSendToCloud: false,
    showEditInChartStudio: false,
    modeBarButtonsToRemove: ["select2d", "lasso2d"],
    toImageButtonOptions: {format: "png", scale: 2}
  };
  var figures;
  try {
    figures = JSON.parse(document.getElementById("cc-figures").textContent);
  } catch (err) {
    root.setAttribute("data-charts", "error");
    throw err;
  }
  var drawn = Object.keys(figures).map(function (id) {
    var element = document.getElementById(id);
    if (!element) {
      return Promise.resolve();
    }
    return Plotly.newPlot(element, figures[id].data, figures[id].layout, config);
  });
  Promise.all(drawn).then(
    function () { root.setAttribute("data-charts", "drawn"); },
    function (err) { root.setAttribute("data-charts", "error"); console.error(err); }
  );
})();
