// The custom dates are asked for only when "Custom dates" is the chosen period.

const custom = document.querySelector("[data-custom-dates]");
const presets = document.querySelectorAll('input[name="preset"]');

function update() {
  const chosen = document.querySelector('input[name="preset"]:checked');
  const isCustom = chosen !== null && chosen.value === "custom";
  custom.hidden = !isCustom;
  for (const input of custom.querySelectorAll("input")) {
    input.disabled = !isCustom;
  }
}

if (custom) {
  for (const preset of presets) {
    preset.addEventListener("change", update);
  }
  update();
}
