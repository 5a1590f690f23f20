// Swift API over the Objective-C++ bridge: CGImage in, masks (as CGImage) out.
import CoreGraphics
import Foundation
import Sam3SpecCore

public struct Instance {
  public let score: Float
  public let box: CGRect  // pixels of the input image
  public let mask: CGImage  // 8-bit grey, 255 = object, the input image's size
}

public struct Segmentation {
  public let presence: Float
  public let instances: [Instance]  // best first
}

public final class Sam3Segmenter {
  private let core: S3SSegmenter
  private var video = S3STrackState()
  private var rgb = [UInt8]()

  /// Loads `model.pte` (and `model.text_table.safetensors` beside it, for text prompts).
  public init(modelURL: URL, threads: Int? = nil) throws {
    if let threads { _ = S3SSegmenter.setNumThreads(UInt(threads)) }
    core = try S3SSegmenter(modelPath: modelURL.path)
  }

  /// Encodes one image (runs `encode_image` once; every `segment` call reuses it).
  public func setImage(_ image: CGImage) throws {
    let (width, height) = try fillRGB(image)
    try rgb.withUnsafeBufferPointer { try core.setImageRGB($0.baseAddress!, width: width, height: height) }
  }

  /// Segments every instance of a phrase (from the exported text table) and/or pixel boxes / points.
  public func segment(text: String? = nil, boxes: [CGRect] = [], points: [CGPoint] = [],
                      threshold: Float = 0.5) throws -> Segmentation {
    let result = try core.segmentText(text, boxes: boxes.map { NSValue(cgRect: $0) },
                                      points: points.map { NSValue(cgPoint: $0) }, threshold: threshold)
    return Self.convert(result)
  }

  /// Video: call after `setImage(first frame)` + `segment(...)`; then `track(frame)` per frame.
  public func startVideo() throws {
    video = S3STrackState()
    try core.startTrack(video)
  }

  public func track(_ frame: CGImage, text: String? = nil, boxes: [CGRect] = [], points: [CGPoint] = [],
                    threshold: Float = 0.5) throws -> Segmentation {
    let (width, height) = try fillRGB(frame)
    let result = try rgb.withUnsafeBufferPointer {
      try core.trackRGB($0.baseAddress!, width: width, height: height, text: text,
                        boxes: boxes.map { NSValue(cgRect: $0) }, points: points.map { NSValue(cgPoint: $0) },
                        state: video, threshold: threshold)
    }
    return Self.convert(result)
  }

  /// Draws `image` into an RGBA buffer and keeps RGB (the core wants 3 bytes per pixel).
  private func fillRGB(_ image: CGImage) throws -> (Int, Int) {
    let width = image.width, height = image.height
    var rgba = [UInt8](repeating: 0, count: width * height * 4)
    let drawn: Bool = rgba.withUnsafeMutableBytes { buffer in
      guard let context = CGContext(data: buffer.baseAddress, width: width, height: height, bitsPerComponent: 8,
                                    bytesPerRow: width * 4, space: CGColorSpaceCreateDeviceRGB(),
                                    bitmapInfo: CGImageAlphaInfo.noneSkipLast.rawValue) else { return false }
      context.draw(image, in: CGRect(x: 0, y: 0, width: width, height: height))
      return true
    }
    guard drawn else { throw NSError(domain: S3SErrorDomain, code: 2,
                                     userInfo: [NSLocalizedDescriptionKey: "cannot read the image's pixels"]) }
    rgb = [UInt8](repeating: 0, count: width * height * 3)
    for i in 0..<(width * height) {
      rgb[i * 3] = rgba[i * 4]; rgb[i * 3 + 1] = rgba[i * 4 + 1]; rgb[i * 3 + 2] = rgba[i * 4 + 2]
    }
    return (width, height)
  }

  private static func convert(_ result: S3SSegmentation) -> Segmentation {
    let width = result.width, height = result.height
    let instances = result.instances.map { item -> Instance in
      let grey = item.mask.map { $0 == 0 ? UInt8(0) : UInt8(255) }
      let provider = CGDataProvider(data: Data(grey) as CFData)!
      let mask = CGImage(width: width, height: height, bitsPerComponent: 8, bitsPerPixel: 8, bytesPerRow: width,
                         space: CGColorSpaceCreateDeviceGray(), bitmapInfo: CGBitmapInfo(rawValue: 0),
                         provider: provider, decode: nil, shouldInterpolate: false, intent: .defaultIntent)!
      return Instance(score: item.score, box: item.box, mask: mask)
    }
    return Segmentation(presence: result.presence, instances: instances)
  }
}
