import type { Page } from "playwright-core";

/** A text element whose colour against its background is below WCAG 2.x AA (1.4.3). */
export interface LowContrast {
  text: string;
  ratio: number;
  required: number;
  color: string;
  background: string;
}

/**
 * WCAG 2.x AA contrast (success criterion 1.4.3) of every visible text on the page: 4.5:1, or 3:1 for large text
 * (at least 24 px, or 18.66 px bold). The background is the first opaque one among the element and its ancestors
 * (alpha blended over what lies under it), white at the root. Disabled controls are exempt, as WCAG exempts them.
 * Run in the page; answers the failures (empty when every text passes).
 */
export function lowContrastTexts(page: Page): Promise<LowContrast[]> {
  return page.evaluate(`(() => {
    const parse = (value) => {
      const m = value.match(/rgba?\\(([^)]+)\\)/);
      if (!m) return [0, 0, 0, 0];
      const parts = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
      return [parts[0], parts[1], parts[2], parts.length > 3 ? parts[3] : 1];
    };
    const over = (top, bottom) => {
      const a = top[3];
      return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat(1);
    };
    const background = (element) => {
      const layers = [];
      for (let node = element; node && node.nodeType === 1; node = node.parentElement) {
        const color = parse(getComputedStyle(node).backgroundColor);
        if (color[3] > 0) layers.push(color);
        if (color[3] >= 1) break;
      }
      let result = [255, 255, 255, 1];
      for (const layer of layers.reverse()) result = over(layer, result);
      return result;
    };
    const luminance = (rgb) => {
      const [r, g, b] = rgb.slice(0, 3).map((v) => {
        const c = v / 255;
        return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const failures = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const seen = new Set();
    for (let text = walker.nextNode(); text; text = walker.nextNode()) {
      const element = text.parentElement;
      if (!element || seen.has(element) || !text.textContent.trim()) continue;
      seen.add(element);
      if (element.closest("[disabled], [aria-hidden='true'], script, style, noscript")) continue;
      const style = getComputedStyle(element);
      const box = element.getBoundingClientRect();
      if (style.visibility !== "visible" || Number(style.opacity) === 0 || box.width === 0 || box.height === 0) continue;
      const bg = background(element);
      const fg = over(parse(style.color), bg);
      const [light, dark] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
      const ratio = (light + 0.05) / (dark + 0.05);
      const size = parseFloat(style.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
      const required = large ? 3 : 4.5;
      if (ratio + 0.005 < required) {
        failures.push({
          text: text.textContent.trim().slice(0, 60),
          ratio: Math.round(ratio * 100) / 100,
          required,
          color: style.color,
          background: "rgb(" + bg.slice(0, 3).map(Math.round).join(", ") + ")",
        });
      }
    }
    return failures;
  })()`);
}
