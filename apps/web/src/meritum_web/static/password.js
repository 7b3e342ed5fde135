// A strength hint for the archive password: its length and variety, in words.

const input = document.getElementById("password");
const hint = document.querySelector("[data-strength]");
const minimum = input ? Number.parseInt(input.getAttribute("minlength") ?? "12", 10) : 12;

function strength(value) {
  if (value.length === 0) {
    return `Optional. At least ${minimum} characters; a few unrelated words are easy to remember and hard to guess.`;
  }
  if (value.length < minimum) {
    return `Too short: ${minimum - value.length} more characters needed.`;
  }
  const kinds = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((re) => re.test(value)).length;
  const words = value.trim().split(/\s+/).length;
  if (value.length >= 20 || (words >= 4 && value.length >= 16)) {
    return "Strong.";
  }
  return kinds >= 3 ? "Good." : "Fair: longer, or a mix of letters, digits and symbols, is stronger.";
}

if (input && hint) {
  input.addEventListener("input", () => {
    hint.textContent = strength(input.value);
  });
}
