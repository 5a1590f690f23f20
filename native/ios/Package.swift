// swift-tools-version:5.9
// sam3spec for iOS / macOS: the C++ core in ../src (symlinked into Sources/Sam3SpecCore), an
// Objective-C++ bridge, and a Swift API. ExecuTorch comes as its prebuilt xcframeworks through
// ExecuTorch's SwiftPM branches ("swiftpm-<version>"). Use the version of the `executorch` wheel that
// exported the .pte (1.5.1 here): a program is read by the runtime of the same release.
//
// NOT compiled or run on the Linux machine this repository is developed on (no Xcode): see README.md.
import PackageDescription

let executorchBranch = "swiftpm-1.5.1"

let package = Package(
  name: "Sam3Spec",
  platforms: [.iOS(.v17), .macOS(.v14)],
  products: [
    .library(name: "Sam3Spec", targets: ["Sam3Spec"]),
  ],
  dependencies: [
    .package(url: "https://github.com/pytorch/executorch.git", branch: executorchBranch),
  ],
  targets: [
    .target(
      name: "Sam3SpecCore",
      dependencies: [
        .product(name: "executorch", package: "executorch"),
        .product(name: "backend_xnnpack", package: "executorch"),
        .product(name: "backend_coreml", package: "executorch"),
        .product(name: "kernels_optimized", package: "executorch"),
        .product(name: "kernels_quantized", package: "executorch"),
      ],
      path: "Sources/Sam3SpecCore",
      exclude: ["core/json.h", "core/image_ops.h", "core/text_table.h", "core/processing.h"],
      sources: ["core/segmenter.cpp", "core/image_ops.cpp", "core/text_table.cpp", "core/json.cpp",
                "core/metadata.cpp", "core/processing.cpp", "Sam3SpecBridge.mm"],
      publicHeadersPath: "include",
      cxxSettings: [
        .headerSearchPath("."),
        .headerSearchPath("core"),
        .define("C10_USING_CUSTOM_GENERATED_MACROS"),
      ],
      linkerSettings: [
        // Kernel and backend libraries register themselves from static initialisers that nothing
        // references: keep them (ExecuTorch's iOS guide, "Linkage").
        .unsafeFlags(["-all_load"]),
      ]
    ),
    .target(name: "Sam3Spec", dependencies: ["Sam3SpecCore"], path: "Sources/Sam3Spec"),
  ],
  cxxLanguageStandard: .cxx17
)
