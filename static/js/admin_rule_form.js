// The routing rule form in the admin: show only the fieldsets the chosen target uses.
// Fieldsets carry `lp-target lp-for-<target>` (routing/admin.py). Without this script every
// fieldset shows, and the form's validation says which field a target needs.
(function () {
  "use strict";
  function apply(select) {
    var target = select.value;
    document.querySelectorAll("fieldset.lp-target").forEach(function (fieldset) {
      fieldset.hidden = !fieldset.classList.contains("lp-for-" + target);
    });
  }
  function init() {
    var select = document.getElementById("id_target");
    if (!select) return;
    apply(select);
    select.addEventListener("change", function () { apply(select); });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
