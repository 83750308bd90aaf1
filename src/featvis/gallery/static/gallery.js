// featvis gallery: sort a layer page's tiles (by channel, dataset maximum, render/maximum ratio).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var select = document.getElementById("sort");
  var tiles = document.getElementById("tiles");
  if (!select || !tiles) { return; }
  select.addEventListener("change", function () {
    var key = select.value;
    var items = Array.prototype.slice.call(tiles.children);
    items.sort(function (a, b) {
      var x = parseFloat(a.dataset[key]), y = parseFloat(b.dataset[key]);
      if (key === "channel") { return x - y; }
      if (isNaN(x)) { return isNaN(y) ? a.dataset.channel - b.dataset.channel : 1; }
      if (isNaN(y)) { return -1; }
      return y - x || a.dataset.channel - b.dataset.channel;  // largest first, ties by channel
    });
    var fragment = document.createDocumentFragment();
    items.forEach(function (item) { fragment.appendChild(item); });
    tiles.appendChild(fragment);
  });
});
