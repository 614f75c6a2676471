// Scanning the QR with the camera on the verify page itself, for phones whose camera app does
// not open links: the browser's BarcodeDetector where it has one that reads QR codes, otherwise
// zxing-wasm's reader, installed from the npm registry at build time and served by us from
// /v/vendor/ (Makefile: DECODER), never from a CDN.

const VENDOR = "/v/vendor/";
const EVERY_MS = 250;

// Start the camera in `video` and look for a QR code until one is read: `onText(text)` is
// called once with it. Returns a function that stops the camera.
export async function startScanning(video, onText) {
  const stream = await navigator.mediaDevices.getUserMedia(
    {video: {facingMode: "environment"}, audio: false});
  video.srcObject = stream;
  await video.play();
  const read = await decoder();
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d", {willReadFrequently: true});
  let stopped = false;
  const stop = () => {
    stopped = true;
    stream.getTracks().forEach((track) => track.stop());
    video.srcObject = null;
  };
  const look = async () => {
    if (stopped) return;
    if (video.videoWidth) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      context.drawImage(video, 0, 0);
      const texts = await read(canvas, context);
      if (texts.length && !stopped) {
        stop();
        onText(texts[0]);
        return;
      }
    }
    setTimeout(look, EVERY_MS);
  };
  look();
  return stop;
}

// A function reading the QR texts in a canvas: BarcodeDetector, else zxing-wasm.
async function decoder() {
  if ("BarcodeDetector" in window) {
    const formats = await window.BarcodeDetector.getSupportedFormats();
    if (formats.includes("qr_code")) {
      const detector = new window.BarcodeDetector({formats: ["qr_code"]});
      return async (canvas) => (await detector.detect(canvas)).map((found) => found.rawValue);
    }
  }
  await script(VENDOR + "zxing-reader.js");
  const zxing = window.ZXingWASM;
  zxing.prepareZXingModule({
    overrides: {locateFile: (path, prefix) => (path.endsWith(".wasm") ? VENDOR + path
                                                                      : prefix + path)},
  });
  return async (canvas, context) => {
    const image = context.getImageData(0, 0, canvas.width, canvas.height);
    const results = await zxing.readBarcodes(image, {formats: ["QRCode"], tryHarder: true,
                                                     maxNumberOfSymbols: 1});
    return results.filter((found) => found.isValid).map((found) => found.text);
  };
}

function script(src) {
  if (document.querySelector(`script[src="${src}"]`)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const tag = document.createElement("script");
    tag.src = src;
    tag.onload = resolve;
    tag.onerror = () => reject(new Error("cannot load " + src));
    document.head.append(tag);
  });
}
