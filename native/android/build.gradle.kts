// Android library module: Kotlin API (Sam3Segmenter) + JNI (sam3spec_jni) over the C++ core, with the
// ExecuTorch runtime from the executorch-android AAR. NOT built here (no Android SDK / NDK / Gradle on
// the development machine): see README.md for what was compiled where.
plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

// Match the `executorch` wheel that exported the .pte (a program is read by the runtime of its release).
val executorchVersion = providers.gradleProperty("executorchVersion").getOrElse("1.5.1")
// ExecuTorch's C++ headers of that release: the pip wheel's include/ folder
// (python -c "import executorch, os; print(os.path.dirname(executorch.__file__) + '/include')").
val executorchInclude = providers.gradleProperty("executorchInclude").orNull
    ?: error("set executorchInclude=<site-packages>/executorch/include in gradle.properties")

val executorchAar: Configuration by configurations.creating
dependencies {
    implementation("org.pytorch:executorch-android:$executorchVersion")
    executorchAar("org.pytorch:executorch-android:$executorchVersion@aar")
    implementation("com.facebook.fbjni:fbjni:0.5.1")
}

// The AAR's jni/<abi>/libexecutorch.so, unpacked so CMake can link the JNI library against it.
val aarJniDir = layout.buildDirectory.dir("executorch-aar")
val unpackExecutorch by tasks.registering(Copy::class) {
    from({ zipTree(executorchAar.singleFile) }) { include("jni/**") }
    into(aarJniDir)
}

android {
    namespace = "org.sam3spec"
    compileSdk = 35
    defaultConfig {
        minSdk = 26
        ndk { abiFilters += listOf("arm64-v8a") }
        externalNativeBuild {
            cmake {
                arguments += listOf(
                    "-DEXECUTORCH_INCLUDE_DIR=$executorchInclude",
                    "-DEXECUTORCH_AAR_JNI_DIR=${aarJniDir.get().asFile}/jni",
                    "-DANDROID_STL=c++_shared",
                )
            }
        }
    }
    externalNativeBuild { cmake { path = file("src/main/cpp/CMakeLists.txt") } }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
}

tasks.matching { it.name.startsWith("configureCMake") || it.name.startsWith("buildCMake") }
    .configureEach { dependsOn(unpackExecutorch) }
