// Shared by every page (no inline handlers: the Content-Security-Policy allows only this server's scripts).
"use strict";
document.querySelectorAll("[data-autosubmit]").forEach((field) =>
  field.addEventListener("change", () => field.form.submit()));
