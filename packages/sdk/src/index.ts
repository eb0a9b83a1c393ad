/** The Tessera client SDK. See README.md. */
export const SDK_VERSION = "0.1.0";
